// name: new_accounts_near_defaulters (embedded dialect)
// Differs from the Neo4j text: no duration({days: ...}); to_days() makes the interval.
MATCH (x:User)
WITH max(x.signup_date) - to_days($recent_days) AS cutoff
MATCH (u:User)
WHERE u.signup_date >= cutoff
OPTIONAL MATCH (u)-[:FRIEND]-(f:User)
WHERE f.defaulted
WITH u, count(DISTINCT f) AS defaulter_friends
OPTIONAL MATCH (u)-[:USES]->(:Device)<-[:USES]-(s:User)
WHERE s.defaulted AND s <> u
WITH u, defaulter_friends, count(DISTINCT s) AS device_sharers
OPTIONAL MATCH (u)-[:TRANSFER]-(t:User)
WHERE t.defaulted
WITH u, defaulter_friends, device_sharers, count(DISTINCT t) AS transfer_partners
WITH u, defaulter_friends, device_sharers, transfer_partners,
     defaulter_friends + device_sharers + transfer_partners AS links
WHERE links > 0
RETURN u.user_id AS user_id,
       u.signup_date AS signup_date,
       defaulter_friends,
       device_sharers,
       transfer_partners,
       links,
       u.score AS score,
       u.defaulted AS defaulted
ORDER BY links DESC, user_id
LIMIT $limit
