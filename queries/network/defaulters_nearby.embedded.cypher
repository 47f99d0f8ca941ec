// name: defaulters_nearby (embedded dialect)
// Differs from the Neo4j text: no list comprehension, so the path's ids come from
// properties(nodes(p), 'user_id'); lists are indexed from 1 and cannot be sorted on, so
// rows are ordered by path[2], the friend in between (path[1] in Neo4j); TRAIL keeps
// Neo4j's rule that a path never reuses a relationship (the engine's default would also
// walk back along the same friendship).
MATCH p = (u:User {user_id: $user_id})-[:FRIEND* TRAIL 1..2]-(d:User)
WHERE d <> u AND d.defaulted
WITH d, length(p) AS hops, properties(nodes(p), 'user_id') AS path
RETURN d.user_id AS defaulter_id,
       hops,
       path
ORDER BY hops, defaulter_id, path[2]
LIMIT $limit
