// name: top_pagerank
// params: community (int, required): community id (the `community` property scoring writes back)
// params: limit (int, 10): how many users to return
// description: The most central users of a community by PageRank, with their degree, score and outcome.
// example: creditgraph query run top_pagerank --param community=7 --limit 5
// reads: User.community, User.pagerank, User.score
// friends counts distinct users (a friendship stored both ways is one friend).
MATCH (u:User)
WHERE u.community = $community AND u.pagerank IS NOT NULL
OPTIONAL MATCH (u)-[:FRIEND]-(f:User)
WITH u, count(DISTINCT f) AS friends
RETURN u.user_id AS user_id,
       u.pagerank AS pagerank,
       friends,
       u.score AS score,
       u.defaulted AS defaulted
ORDER BY pagerank DESC, user_id
LIMIT $limit
