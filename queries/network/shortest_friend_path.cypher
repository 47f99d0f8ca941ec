// name: shortest_friend_path
// params: from_user (str, required): the user the path leaves from
// params: to_user (str, required): the user the path reaches
// description: The shortest friendship path (at most 6 hops) between two users, with the scores along it.
// example: creditgraph query run shortest_friend_path --param from_user=u0000001 --param to_user=u0000042
// reads: User.score
MATCH p = shortestPath(
  (a:User {user_id: $from_user})-[:FRIEND*1..6]-(b:User {user_id: $to_user})
)
RETURN length(p) AS hops,
       [n IN nodes(p) | n.user_id] AS path,
       [n IN nodes(p) | n.score] AS scores
