// name: friend_cluster (embedded dialect)
// Differs from the Neo4j text: the engine's SHORTEST recursive pattern instead of the
// GQL path selector; both reach each user once, at its distance.
MATCH p = (u:User {user_id: $user_id})-[:FRIEND* SHORTEST 1..3]-(f:User)
WHERE f <> u AND length(p) <= $hops
WITH f, length(p) AS hops
RETURN f.user_id AS user_id,
       hops,
       f.score AS score,
       f.pd AS pd,
       f.defaulted AS defaulted,
       f.signup_date AS signup_date
ORDER BY hops, user_id
LIMIT $limit
