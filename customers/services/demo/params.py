"""The fixed ingredients of the demo data: who the staff are, the channels and what they cost, the
countries and names, and the true parameters of the buy-till-you-die process that makes the orders.

Changing a number here changes the data every seed produces; README's "Demo data" section quotes the
model parameters, so keep the two in step."""

from __future__ import annotations

from dataclasses import dataclass

from core.roles import Role

# Every demo customer's external id starts with this; `seed_demo --reset` deletes exactly those.
CUSTOMER_PREFIX = "demo-c"
ORDER_PREFIX = "demo-o"

# --- Staff --------------------------------------------------------------------------------------
# Demo-only passwords, printed by the command and documented in README. Never use them for real data.


@dataclass(frozen=True)
class StaffAccount:
    username: str
    password: str
    role: Role
    first_name: str
    last_name: str


STAFF = (
    StaffAccount("admin", "demo-admin-pass", Role.ADMIN, "Ada", "Admin"),
    StaffAccount("manager", "demo-manager-pass", Role.MANAGER, "Maya", "Manager"),
    StaffAccount("agent1", "demo-agent-pass", Role.AGENT, "Alex", "Agent"),
    StaffAccount("agent2", "demo-agent-pass", Role.AGENT, "Sam", "Agent"),
)
# Customers are owned by the agents; a share of new leads has no account manager yet.
OWNER_USERNAMES = ("agent1", "agent2")
UNOWNED_SHARE = 0.12

# --- Acquisition channels ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    code: str
    name: str
    status: str  # AcquisitionChannel.Status value
    share: float  # relative weight in the acquisition mix at the start of the period
    trend: float  # log growth of that weight over the period (0 = steady)
    active_from: float  # fraction of the period when the channel starts acquiring
    active_until: float  # ... and stops (1.0 = still running)
    cac: float  # cost (USD) of acquiring one customer, before +-15% monthly noise
    buy_share: float  # share of its sign-ups who ever place an order
    rate_factor: float  # multiplies the purchase rate lambda: referred customers buy more often


# The CACs are set against what a customer is worth here (about 100 USD predicted over the next year,
# 350 USD by the CLV formula, which counts the whole expected lifespan): organic search, e-mail and
# referral pay back many times over, paid search sits just above the 3x rule of thumb, and social ads,
# influencers and the paused display campaign fall under it (flagged on the value dashboard).
CHANNELS = (
    ChannelSpec("organic-search", "Organic search", "proven", 0.30, 0.0, 0.0, 1.0, 12.0, 0.70, 1.00),
    ChannelSpec("paid-search", "Paid search", "proven", 0.24, 0.1, 0.0, 1.0, 105.0, 0.74, 0.95),
    ChannelSpec("referral", "Referral", "proven", 0.10, 0.3, 0.0, 1.0, 25.0, 0.80, 1.30),
    ChannelSpec("email", "E-mail newsletter", "proven", 0.10, 0.0, 0.0, 1.0, 8.0, 0.66, 1.15),
    ChannelSpec("social-ads", "Social ads", "testing", 0.12, 0.9, 0.0, 1.0, 115.0, 0.62, 0.80),
    ChannelSpec("affiliate", "Affiliate", "testing", 0.10, 0.4, 0.35, 1.0, 85.0, 0.68, 0.85),
    ChannelSpec("influencer", "Influencer", "testing", 0.08, 0.5, 0.70, 1.0, 140.0, 0.55, 0.75),
    ChannelSpec("display", "Display ads", "paused", 0.10, -0.5, 0.0, 0.55, 100.0, 0.58, 0.80),
)
SPEND_NOISE = 0.15

# --- Growth -------------------------------------------------------------------------------------
# Sign-ups per day grow exponentially: the last month brings about this many times the first.
GROWTH = 3.5

# --- The purchase process (per day) and spend, after Fader, Hardie & Lee (2005) --------------------
# BG/NBD: lambda ~ Gamma(shape R, rate ALPHA_DAYS), dropout p ~ Beta(A, B) after each repeat purchase.
# In weeks, the unit recompute_clv fits in, alpha is ALPHA_DAYS / 7 = 10.
BGNBD_R = 0.8
BGNBD_ALPHA_DAYS = 70.0
BGNBD_A = 0.8
BGNBD_B = 3.0
LAMBDA_CAP_PER_DAY = 0.2  # no one orders more often than every five days on average
REPEAT_CAP = 150
# Gamma-Gamma: order value z ~ Gamma(shape P, rate nu), nu ~ Gamma(shape Q, rate GAMMA); mean P*GAMMA/(Q-1).
GG_P = 6.0
GG_Q = 4.0
GG_GAMMA = 30.0
MIN_ORDER_CENTS = 100
FIRST_ORDER_DELAY_DAYS = 2.0  # mean delay from sign-up to the first order (exponential)
REFUNDED_SHARE = 0.03
CANCELLED_SHARE = 0.02

# --- People ------------------------------------------------------------------------------------
# (country, weight, locale, phone prefix)
COUNTRIES = (
    ("US", 0.36, "en", "+1"),
    ("GB", 0.12, "en", "+44"),
    ("CA", 0.06, "en", "+1"),
    ("AU", 0.05, "en", "+61"),
    ("IE", 0.02, "en", "+353"),
    ("DE", 0.10, "de", "+49"),
    ("AT", 0.02, "de", "+43"),
    ("FR", 0.08, "fr", "+33"),
    ("ES", 0.05, "es", "+34"),
    ("IT", 0.05, "it", "+39"),
    ("NL", 0.05, "nl", "+31"),
    ("SE", 0.04, "sv", "+46"),
)
FIRST_NAMES = {
    "en": (
        "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Ava", "Elijah", "Sophia", "James", "Isabella",
        "William", "Mia", "Benjamin", "Charlotte", "Lucas", "Harper", "Henry", "Evelyn", "Jack", "Grace",
        "Thomas", "Chloe", "Daniel", "Ella", "Samuel", "Lily", "Joseph", "Zoe", "David",
    ),
    "de": (
        "Lena", "Jonas", "Hannah", "Leon", "Anna", "Felix", "Mia", "Paul", "Lea", "Maximilian", "Emilia",
        "Lukas", "Sophie", "Finn", "Marie", "Elias", "Clara", "Jakob", "Johanna", "Moritz",
    ),
    "fr": (
        "Camille", "Louis", "Léa", "Gabriel", "Chloé", "Jules", "Manon", "Hugo", "Inès", "Arthur", "Jade",
        "Raphaël", "Louise", "Théo", "Zoé", "Nathan", "Alice", "Lucas", "Juliette", "Mathis",
    ),
    "es": (
        "Lucía", "Hugo", "Sofía", "Martín", "María", "Pablo", "Paula", "Daniel", "Valeria", "Alejandro",
        "Carmen", "Mateo", "Julia", "Diego", "Elena", "Javier",
    ),
    "it": (
        "Giulia", "Leonardo", "Sofia", "Francesco", "Aurora", "Alessandro", "Chiara", "Lorenzo", "Martina",
        "Matteo", "Giorgia", "Marco", "Alessia", "Luca", "Elisa", "Andrea",
    ),
    "nl": (
        "Emma", "Daan", "Julia", "Sem", "Tess", "Lucas", "Sanne", "Bram", "Fleur", "Jesse", "Lotte", "Thijs",
        "Anouk", "Ruben", "Noor", "Milan",
    ),
    "sv": (
        "Alice", "William", "Maja", "Hugo", "Elsa", "Oscar", "Astrid", "Lucas", "Wilma", "Elias", "Saga",
        "Liam", "Ebba", "Axel", "Freja", "Nils",
    ),
}
LAST_NAMES = {
    "en": (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Anderson",
        "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
        "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell",
        "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards",
        "O'Brien", "Murphy", "Kelly", "Walsh", "Hughes", "Wood", "Hall", "Cooper",
    ),
    "de": (
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Braun", "Zimmermann", "Krüger",
        "Hofmann", "Hartmann", "Lange", "Werner",
    ),
    "fr": (
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Fournier", "Girard",
    ),
    "es": (
        "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
        "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Álvarez", "Romero", "Navarro",
    ),
    "it": (
        "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
        "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Giordano", "Mancini", "Rizzo",
    ),
    "nl": (
        "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
        "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters",
    ),
    "sv": (
        "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
        "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Lindberg",
    ),
}
# Reserved example domains (RFC 2606): demo customers can never receive a real e-mail.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "shop.example.net")
PHONE_SHARE = 0.55
OPT_IN_SHARE = 0.55
OPT_IN_SHARE_EMAIL_CHANNEL = 0.95

TAGS = ("vip", "newsletter", "wholesale", "student", "gift-buyer", "eco", "early-adopter", "b2b")
TAGGED_SHARE = 0.18  # customers with one tag; a quarter of them get a second one

# --- Activity ----------------------------------------------------------------------------------
SESSION_BASE_RATE = 0.01  # sessions per active day on top of the purchase rate
SESSION_CAP = 60
LEAD_ACTIVE_DAYS = 14.0  # mean days a lead keeps visiting after signing up
CHURNED_ACTIVE_DAYS = 30.0  # mean days a dead customer keeps visiting after the last order
EMAIL_OPEN_RATE = 0.008  # opens per day while opted in (one every four months or so)
EMAIL_OPEN_CAP = 24
SUPPORT_TICKET_SHARE = 0.05
PAGES = (
    "/", "/products", "/products/running-shoes", "/products/rain-jacket", "/products/yoga-mat",
    "/products/water-bottle", "/products/backpack", "/sale", "/new-in", "/account", "/account/orders",
    "/help/shipping", "/help/returns", "/blog/how-to-choose-running-shoes", "/gift-cards",
)
DEVICES = ("desktop", "mobile", "tablet")
CAMPAIGNS = (
    "welcome-series", "spring-sale", "summer-sale", "back-to-school", "black-friday", "holiday-gift-guide",
    "new-arrivals", "win-back", "loyalty-update", "product-launch",
)
TICKET_TOPICS = ("shipping-delay", "return-request", "wrong-size", "payment-issue", "account-access", "damaged-item")
TICKET_PRIORITIES = ("low", "normal", "high")
SKU_COUNT = 240

# --- Notes and tasks -----------------------------------------------------------------------------
NOTE_SHARE = 0.04
NOTES = (
    "Called about a delayed parcel; courier confirmed delivery for tomorrow.",
    "Asked for a bulk discount for their team; sent the wholesale price list.",
    "Prefers to be contacted by e-mail, not by phone.",
    "Returned an item that was the wrong size; exchange sent.",
    "Very happy with the last order, offered to write a review.",
    "Interested in the loyalty programme; explained how points work.",
    "Complained about the checkout on mobile; passed to the web team.",
    "Birthday in the spring; remember the birthday voucher.",
    "Buys gifts before the holidays; send the gift guide early.",
    "Payment failed twice; card updated during the call.",
)
TASK_SHARE = 0.025
TASKS = (
    "Call back about the refund",
    "Send a win-back offer",
    "Follow up on the wholesale enquiry",
    "Check that the replacement arrived",
    "Invite to the loyalty programme",
    "Ask for a product review",
)
