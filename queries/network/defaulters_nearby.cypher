// name: defaulters_nearby
// params: user_id (str, required): the user whose neighbourhood is searched
// params: limit (int, 100): most paths to return
// description: Known defaulters within two friendship hops of a user, one row per path to them.
// example: creditgraph query run defaulters_nearby --param user_id=u0000042
MATCH p = (u:User {user_id: $user_id})-[:FRIEND*1..2]-(d:User)
WHERE d <> u AND d.defaulted
WITH d, length(p) AS hops, [n IN nodes(p) | n.user_id] AS path
RETURN d.user_id AS defaulter_id,
       hops,
       path
ORDER BY hops, defaulter_id, path[1]
LIMIT $limit
