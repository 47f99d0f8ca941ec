// name: friend_cluster
// params: user_id (str, required): the user at the centre of the cluster
// params: hops (int, 2): friendship hops to follow, 1 to 3 (larger values count as 3)
// params: limit (int, 200): most rows to return
// description: A user's friends up to k hops away, nearest first, with their scores and known outcomes.
// example: creditgraph query run friend_cluster --param user_id=u0000042 --param hops=2
// reads: User.score, User.pd
// SHORTEST 1 with one bound end is a breadth-first search (StatefulShortestPath): each user
// within 3 hops is reached once, at its distance, instead of enumerating every path.
MATCH p = SHORTEST 1 (u:User {user_id: $user_id})-[:FRIEND]-{1,3}(f:User)
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
