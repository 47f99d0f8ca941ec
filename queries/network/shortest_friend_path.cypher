// name: shortest_friend_path
// params: from_user (str, required): the user the path leaves from
// params: to_user (str, required): the user the path reaches
// description: The shortest friendship path (at most 6 hops) between two users, with the scores along it.
// example: creditgraph query run shortest_friend_path --param from_user=u0000001 --param to_user=u0000042
// reads: User.score
// Neo4j raises on shortestPath() from a node to itself (setting
// dbms.cypher.forbid_shortestpath_common_nodes), so the same user at both ends is filtered
// out first: no rows, as on the embedded store.
MATCH (a:User {user_id: $from_user})
MATCH (b:User {user_id: $to_user})
WHERE a <> b
MATCH p = shortestPath((a)-[:FRIEND*1..6]-(b))
RETURN length(p) AS hops,
       [n IN nodes(p) | n.user_id] AS path,
       [n IN nodes(p) | n.score] AS scores
