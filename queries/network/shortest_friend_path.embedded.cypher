// name: shortest_friend_path (embedded dialect)
// Differs from the Neo4j text: no shortestPath(); the engine's SHORTEST recursive
// pattern instead, and properties(nodes(p), ...) for the list comprehensions.
MATCH p = (a:User {user_id: $from_user})-[:FRIEND* SHORTEST 1..6]-(b:User {user_id: $to_user})
RETURN length(p) AS hops,
       properties(nodes(p), 'user_id') AS path,
       properties(nodes(p), 'score') AS scores
LIMIT 1
