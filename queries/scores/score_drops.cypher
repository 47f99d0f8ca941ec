// name: score_drops
// params: min_drop (float, 0.0): smallest fall in points to list (only falls above zero are listed)
// params: limit (int, 100): most users to return
// description: Users whose score fell most since the previous model version (prev_score vs score).
// example: creditgraph query run score_drops --param min_drop=50 --limit 20
// reads: User.score, User.model_id, User.prev_score, User.prev_model_id
MATCH (u:User)
WHERE u.score IS NOT NULL AND u.prev_score IS NOT NULL
WITH u, u.prev_score - u.score AS score_drop
WHERE score_drop > 0 AND score_drop >= $min_drop
RETURN u.user_id AS user_id,
       u.prev_model_id AS prev_model_id,
       u.model_id AS model_id,
       u.prev_score AS prev_score,
       u.score AS score,
       score_drop,
       u.defaulted AS defaulted
ORDER BY score_drop DESC, user_id
LIMIT $limit
