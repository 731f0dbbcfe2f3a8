"""Vectorised generation of the demo data with numpy; no database here.

Everything is drawn from `np.random.default_rng`: the customer base from the seed itself, the orders,
events, notes and tasks of each block of CHUNK customers from (seed, block number). So the data depends
only on the seed, the number of customers and the period, never on the database or the chunk a writer
happens to be at. Times are whole seconds since the epoch (UTC), counted back from `now`, so a later run
with the same seed gives the same customers and orders shifted to end at its own `now`.

Orders follow the BG/NBD story (Fader, Hardie & Lee 2005): a buyer's first order comes shortly after
sign-up; repeat orders arrive as a Poisson process with the customer's rate lambda; after each repeat
order the customer drops out with probability p. Order values follow the Gamma-Gamma spend model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import params as P

DAY = 86_400
CHUNK = 10_000


@dataclass
class CustomerBase:
    """One entry per customer, sorted by sign-up time (so ids grow with it)."""

    now: int
    start: int
    signup: np.ndarray  # int64 seconds
    channel: np.ndarray  # index into P.CHANNELS
    country: np.ndarray  # index into P.COUNTRIES
    first_name: np.ndarray  # index into the locale's name list
    last_name: np.ndarray
    email_domain: np.ndarray
    phone: np.ndarray  # 7-digit number, -1 for none
    owner: np.ndarray  # index into P.OWNER_USERNAMES, -1 for none
    opt_in_at: np.ndarray  # int64 seconds, -1 for no consent
    tag1: np.ndarray  # index into P.TAGS, -1 for none
    tag2: np.ndarray
    first_order: np.ndarray  # int64 seconds, -1 for leads who never bought
    lam: np.ndarray  # purchases per day
    dropout: np.ndarray  # p
    spend_rate: np.ndarray  # nu of the Gamma-Gamma model

    def __len__(self) -> int:
        return len(self.signup)


@dataclass
class Orders:
    customer: np.ndarray  # position in the customer base
    at: np.ndarray
    cents: np.ndarray
    status: np.ndarray  # 0 paid, 1 refunded, 2 cancelled


@dataclass
class Events:
    customer: np.ndarray
    kind: np.ndarray  # index into EVENT_NAMES
    at: np.ndarray
    detail: np.ndarray  # index into the kind's list of property payloads


@dataclass
class Notes:
    customer: np.ndarray
    at: np.ndarray
    text: np.ndarray


@dataclass
class Tasks:
    customer: np.ndarray
    at: np.ndarray
    title: np.ndarray
    due: np.ndarray
    done: np.ndarray  # -1 for open


@dataclass
class Chunk:
    lo: int
    hi: int
    orders: Orders
    events: Events
    notes: Notes
    tasks: Tasks


EVENT_NAMES = ("signup", "login", "page_view", "cart_add", "email_open", "support_ticket")
SIGNUP, LOGIN, PAGE_VIEW, CART_ADD, EMAIL_OPEN, SUPPORT_TICKET = range(len(EVENT_NAMES))
STATUS_NAMES = ("paid", "refunded", "cancelled")


def _choice(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=size, p=w / w.sum())


def _index_in(rng: np.random.Generator, lengths: np.ndarray) -> np.ndarray:
    """A uniform index below each of `lengths`."""
    return np.floor(rng.random(len(lengths)) * lengths).astype(np.int64)


def customer_base(seed: int, n: int, now: int, months: int) -> CustomerBase:
    rng = np.random.default_rng(seed)
    span = round(months * 30.4375 * DAY)
    start = now - span

    # Sign-ups with exponential growth: inverse CDF of a density proportional to exp(g u) on [0, 1).
    g = np.log(P.GROWTH)
    u = np.sort(np.log1p(rng.random(n) * np.expm1(g)) / g)
    signup = start + (u * span).astype(np.int64)

    # Channel mix moves over time: each channel's weight grows or shrinks and is zero outside its window.
    specs = P.CHANNELS
    share = np.array([c.share for c in specs])
    trend = np.array([c.trend for c in specs])
    active = (u[:, None] >= np.array([c.active_from for c in specs])) & (
        u[:, None] < np.array([c.active_until for c in specs])
    )
    weight = np.where(active, share * np.exp(trend * u[:, None]), 0.0)
    cumulative = np.cumsum(weight, axis=1)
    pick = rng.random(n) * cumulative[:, -1]
    channel = (pick[:, None] >= cumulative).sum(axis=1).clip(max=len(specs) - 1)
    del weight, cumulative, active

    country = _choice(rng, [c[1] for c in P.COUNTRIES], n)
    locales = list(P.FIRST_NAMES)
    locale = np.array([locales.index(c[2]) for c in P.COUNTRIES])[country]
    first_name = _index_in(rng, np.array([len(P.FIRST_NAMES[loc]) for loc in locales])[locale])
    last_name = _index_in(rng, np.array([len(P.LAST_NAMES[loc]) for loc in locales])[locale])
    email_domain = rng.integers(0, len(P.EMAIL_DOMAINS), n)
    phone = np.where(rng.random(n) < P.PHONE_SHARE, rng.integers(1_000_000, 10_000_000, n), -1)
    owner = np.where(rng.random(n) < P.UNOWNED_SHARE, -1, rng.integers(0, len(P.OWNER_USERNAMES), n))

    email_channel = np.array([c.code == "email" for c in specs])[channel]
    opts_in = rng.random(n) < np.where(email_channel, P.OPT_IN_SHARE_EMAIL_CHANNEL, P.OPT_IN_SHARE)
    opt_in_at = np.minimum(signup + rng.exponential(DAY, n).astype(np.int64), now)
    opt_in_at = np.where(opts_in, opt_in_at, -1)

    tagged = rng.random(n) < P.TAGGED_SHARE
    tag1 = np.where(tagged, rng.integers(0, len(P.TAGS), n), -1)
    second = rng.integers(1, len(P.TAGS), n)  # an offset, so never the first tag again
    tag2 = np.where(tagged & (rng.random(n) < 0.25), (tag1 + second) % len(P.TAGS), -1)

    buy_share = np.array([c.buy_share for c in specs])[channel]
    first_order = signup + rng.exponential(P.FIRST_ORDER_DELAY_DAYS * DAY, n).astype(np.int64)
    buys = (rng.random(n) < buy_share) & (first_order <= now)
    first_order = np.where(buys, first_order, -1)

    rate_factor = np.array([c.rate_factor for c in specs])[channel]
    lam = np.minimum(rng.gamma(P.BGNBD_R, 1.0 / P.BGNBD_ALPHA_DAYS, n) * rate_factor, P.LAMBDA_CAP_PER_DAY)
    dropout = rng.beta(P.BGNBD_A, P.BGNBD_B, n)
    spend_rate = rng.gamma(P.GG_Q, 1.0 / P.GG_GAMMA, n)

    return CustomerBase(
        now=now,
        start=start,
        signup=signup,
        channel=channel,
        country=country,
        first_name=first_name,
        last_name=last_name,
        email_domain=email_domain,
        phone=phone,
        owner=owner,
        opt_in_at=opt_in_at,
        tag1=tag1,
        tag2=tag2,
        first_order=first_order,
        lam=lam,
        dropout=dropout,
        spend_rate=spend_rate,
    )


def _uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + np.floor(rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def _orders(rng: np.random.Generator, base: CustomerBase, lo: int, hi: int) -> tuple[Orders, np.ndarray]:
    """The orders of customers lo..hi-1, and each customer's last activity time (for events)."""
    now = base.now
    first = base.first_order[lo:hi]
    buyer = np.flatnonzero(first >= 0)
    t0 = first[buyer]
    horizon = now - t0
    expected = base.lam[lo:hi][buyer] * horizon / DAY
    # Repeat orders: M arrivals of the Poisson process in (t0, now], of which the customer lives to make
    # the first J (J ~ Geometric(p): dropout after each repeat order with probability p).
    arrivals = np.minimum(rng.poisson(expected), P.REPEAT_CAP)
    lives_for = rng.geometric(base.dropout[lo:hi][buyer])
    repeats = np.minimum(arrivals, lives_for)
    died = lives_for <= arrivals

    who = np.repeat(np.arange(len(buyer)), arrivals)
    # Sort each buyer's uniforms: the key's integer part keeps buyers apart, its fraction orders within.
    key = np.sort(who + rng.random(len(who)))
    fraction = key - who
    rank = np.arange(len(who)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < repeats[who]
    who = who[keep]
    repeat_at = t0[who] + np.floor(fraction[keep] * horizon[who]).astype(np.int64)

    cust = np.concatenate([buyer, buyer[who]])
    at = np.concatenate([t0, repeat_at])
    order = np.lexsort((at, cust))
    cust, at = cust[order], at[order]
    value = rng.gamma(P.GG_P, 1.0 / base.spend_rate[lo:hi][cust])
    cents = np.maximum(np.round(value * 100).astype(np.int64), P.MIN_ORDER_CENTS)
    draw = rng.random(len(cust))
    status = np.where(draw < P.REFUNDED_SHARE, 1, np.where(draw < P.REFUNDED_SHARE + P.CANCELLED_SHARE, 2, 0))

    # Last visit: a dead customer drifts away some weeks after the last order, a lead after sign-up.
    n = hi - lo
    last_order = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_order, cust, at)
    active_until = np.full(n, now, dtype=np.int64)
    lead = first < 0
    active_until[lead] = base.signup[lo:hi][lead] + rng.exponential(P.LEAD_ACTIVE_DAYS * DAY, int(lead.sum())).astype(
        np.int64
    )
    dead = buyer[died]
    active_until[dead] = last_order[dead] + rng.exponential(P.CHURNED_ACTIVE_DAYS * DAY, len(dead)).astype(np.int64)
    active_until = np.minimum(active_until, now)
    return Orders(customer=cust + lo, at=at, cents=cents, status=status), active_until


def _events(rng: np.random.Generator, base: CustomerBase, lo: int, hi: int, orders: Orders, active_until) -> Events:
    n = hi - lo
    local = np.arange(n)
    signup = base.signup[lo:hi]
    parts = []  # (customer, kind, at, detail)
    parts.append((local, np.full(n, SIGNUP), signup, base.channel[lo:hi]))

    # Sessions while the customer is around: logins and page views, more for frequent buyers.
    days = np.maximum(active_until - signup, 0) / DAY
    rate = base.lam[lo:hi] + P.SESSION_BASE_RATE
    sessions = np.minimum(rng.poisson(rate * days), P.SESSION_CAP)
    who = np.repeat(local, sessions)
    at = _uniform_between(rng, signup[who], active_until[who] + 1)
    is_login = rng.random(len(who)) < 0.35
    detail = np.where(is_login, rng.integers(0, len(P.DEVICES), len(who)), rng.integers(0, len(P.PAGES), len(who)))
    parts.append((who, np.where(is_login, LOGIN, PAGE_VIEW), at, detail))

    # A cart_add minutes before each order (never before sign-up).
    who = orders.customer - lo
    at = np.maximum(orders.at - rng.integers(60, 3_600, len(who)), signup[who])
    parts.append((who, np.full(len(who), CART_ADD), at, rng.integers(0, P.SKU_COUNT * 3, len(who))))

    # E-mail opens after consent.
    opt_in = base.opt_in_at[lo:hi]
    subscribed = opt_in >= 0
    # The rate is zero for those without consent (opt_in is -1 there): a rate computed from now would
    # make numpy draw a now-dependent amount of randomness, and the rest of the chunk would shift with it.
    open_rate = np.where(subscribed, (base.now - opt_in) / DAY * P.EMAIL_OPEN_RATE, 0.0)
    opens = np.minimum(rng.poisson(open_rate), P.EMAIL_OPEN_CAP)
    who = np.repeat(local, opens)
    at = _uniform_between(rng, opt_in[who], np.full(len(who), base.now + 1))
    parts.append((who, np.full(len(who), EMAIL_OPEN), at, rng.integers(0, len(P.CAMPAIGNS), len(who))))

    # A support ticket for a few buyers, some time after their first order.
    first = base.first_order[lo:hi]
    who = np.flatnonzero((first >= 0) & (rng.random(n) < P.SUPPORT_TICKET_SHARE))
    at = _uniform_between(rng, first[who], np.full(len(who), base.now + 1))
    detail = rng.integers(0, len(P.TICKET_TOPICS) * len(P.TICKET_PRIORITIES), len(who))
    parts.append((who, np.full(len(who), SUPPORT_TICKET), at, detail))

    cust, kind, at, detail = (np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(4))
    # (customer, event, time) is the natural key of an event: keep one of any duplicates.
    order = np.lexsort((detail, kind, at, cust))
    cust, kind, at, detail = cust[order], kind[order], at[order], detail[order]
    same = np.zeros(len(cust), dtype=bool)
    same[1:] = (cust[1:] == cust[:-1]) & (at[1:] == at[:-1]) & (kind[1:] == kind[:-1])
    keep = ~same
    return Events(customer=cust[keep] + lo, kind=kind[keep], at=at[keep], detail=detail[keep])


def _notes_and_tasks(rng: np.random.Generator, base: CustomerBase, lo: int, hi: int) -> tuple[Notes, Tasks]:
    n = hi - lo
    signup = base.signup[lo:hi]
    now = np.full(n, base.now + 1)
    with_notes = np.flatnonzero(rng.random(n) < P.NOTE_SHARE)
    count = rng.integers(1, 4, len(with_notes))
    who = np.repeat(with_notes, count)
    at = _uniform_between(rng, signup[who], now[who])
    order = np.lexsort((at, who))
    notes = Notes(customer=who[order] + lo, at=at[order], text=rng.integers(0, len(P.NOTES), len(who)))

    who = np.flatnonzero(rng.random(n) < P.TASK_SHARE)
    at = _uniform_between(rng, signup[who], now[who])
    due = at + rng.integers(1, 15, len(who)) * DAY
    finished = (due < base.now) & (rng.random(len(who)) < 0.8)
    done = np.where(finished, np.minimum(at + rng.integers(3_600, 10 * DAY, len(who)), base.now), -1)
    tasks = Tasks(customer=who + lo, at=at, title=rng.integers(0, len(P.TASKS), len(who)), due=due, done=done)
    return notes, tasks


def chunks(seed: int, base: CustomerBase):
    """Yield the orders, events, notes and tasks of each block of CHUNK customers."""
    for number, lo in enumerate(range(0, len(base), CHUNK)):
        hi = min(lo + CHUNK, len(base))
        rng = np.random.default_rng([seed, number])
        orders, active_until = _orders(rng, base, lo, hi)
        events = _events(rng, base, lo, hi, orders, active_until)
        notes, tasks = _notes_and_tasks(rng, base, lo, hi)
        yield Chunk(lo=lo, hi=hi, orders=orders, events=events, notes=notes, tasks=tasks)
