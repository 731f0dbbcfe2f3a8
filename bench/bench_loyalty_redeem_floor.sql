-- pgbench script of bench/bench_loyalty_redeem.py: the bare-SQL floor of one redemption. The
-- statements the API runs for POST .../redeem/ {"points": 1} (captured from a request; see
-- loyalty/services/ledger.py and the token authentication in core), with no HTTP, Django or DRF:
-- the token and user, then in one transaction the account's lock, the key and the spendable lots,
-- and the one-statement write. Keep it in step with those when they change.
-- Variables: low, high (customer ids), token (an API token's key, quoted: -D "token='...'"). Each account has one lot (the
-- seed's), so the lots' query has one row.
\set customer random(:low, :high)
\set key random(1, 1000000000000)
SELECT t."created", u."id", u."password", u."last_login", u."is_superuser", u."username", u."first_name",
       u."last_name", u."email", u."is_staff", u."is_active", u."date_joined",
       (SELECT MAX(CASE g.name WHEN 'Agent' THEN 1 WHEN 'Manager' THEN 2 WHEN 'Admin' THEN 3 END)
        FROM "auth_user_groups" m JOIN "auth_group" g ON g.id = m."group_id" WHERE m."user_id" = u."id")
FROM "authtoken_token" t JOIN "auth_user" u ON u."id" = t."user_id" WHERE t."key" = :token;
BEGIN;
SELECT id AS account, balance FROM loyalty_loyaltyaccount WHERE customer_id = :customer FOR UPDATE \gset
SELECT e.id AS existing, e.kind AS existing_kind, l.id AS lot, l.remaining AS remaining
FROM (SELECT 1 AS one) o
LEFT JOIN loyalty_ledgerentry e ON e.account_id = :account AND e.idempotency_key = 'floor-' || :client_id || '-' || :key
LEFT JOIN loyalty_pointlot l ON l.account_id = :account AND l.remaining > 0
  AND (l.expires_at IS NULL OR l.expires_at > now()) AND l.available_at <= now()
ORDER BY CASE WHEN l.id = NULL THEN 0 ELSE 1 END, l.expires_at IS NULL, l.expires_at, l.id \gset
\set balance_after :balance - 1
\set remaining_after :remaining - 1
WITH entry AS (
  INSERT INTO loyalty_ledgerentry (account_id, kind, points, balance_after, reason, source, order_id, staff_id,
      idempotency_key, rate, base_amount, unrecovered, reverses_id, created_at)
  VALUES (:account, 'redeem', -1, :balance_after, '', 'system', NULL, NULL, 'floor-' || :client_id || '-' || :key,
      NULL, NULL, 0, NULL, now()) RETURNING id),
draws (lot_id, part, remaining) AS (VALUES (:lot::bigint, 1::bigint, :remaining_after::bigint)),
lots AS (UPDATE loyalty_pointlot l SET remaining = d.remaining FROM draws d WHERE l.id = d.lot_id),
allocations AS (INSERT INTO loyalty_lotallocation (entry_id, lot_id, points) SELECT entry.id, d.lot_id, d.part FROM entry, draws d),
account AS (UPDATE loyalty_loyaltyaccount SET balance = :balance_after, debt = 0 WHERE id = :account)
SELECT id FROM entry;
COMMIT;
