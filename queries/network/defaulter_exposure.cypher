// name: defaulter_exposure
// params: min_defaulted (int, 1): fewest defaulted friends a user must have to be listed
// params: limit (int, 100): most rows to return
// description: Users with the most friends who defaulted, with the share of their friends that did.
// example: creditgraph query run defaulter_exposure --param min_defaulted=2 --limit 20
// reads: User.score
// A friendship stored both ways (a->b and b->a) is one friend: DISTINCT pairs before counting.
MATCH (u:User)-[:FRIEND]-(f:User)
WITH DISTINCT u, f
WITH u, count(f) AS friends, count(CASE WHEN f.defaulted THEN 1 END) AS defaulted_friends
WHERE defaulted_friends >= $min_defaulted
RETURN u.user_id AS user_id,
       friends,
       defaulted_friends,
       round(1.0 * defaulted_friends / friends, 3) AS defaulted_share,
       u.score AS score,
       u.defaulted AS defaulted
ORDER BY defaulted_friends DESC, defaulted_share DESC, user_id
LIMIT $limit
