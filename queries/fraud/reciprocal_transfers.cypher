// name: reciprocal_transfers
// params: min_amount (float, 0.0): smallest total amount every leg of a loop must carry
// params: limit (int, 100): most loops of each length to return
// description: Money moving in loops: pairs who transfer to each other, then three-user cycles.
// example: creditgraph query run reciprocal_transfers --param min_amount=100
MATCH (a:User)-[r1:TRANSFER]->(b:User)-[r2:TRANSFER]->(a)
WHERE a.user_id < b.user_id AND r1.amount >= $min_amount AND r2.amount >= $min_amount
RETURN 2 AS loop_length,
       [a.user_id, b.user_id] AS members,
       r1.n + r2.n AS transfers,
       r1.amount + r2.amount AS total_amount
ORDER BY total_amount DESC, a.user_id, b.user_id
LIMIT $limit
UNION ALL
MATCH (a:User)-[r1:TRANSFER]->(b:User)-[r2:TRANSFER]->(c:User)-[r3:TRANSFER]->(a)
WHERE a.user_id < b.user_id AND a.user_id < c.user_id
  AND r1.amount >= $min_amount AND r2.amount >= $min_amount AND r3.amount >= $min_amount
RETURN 3 AS loop_length,
       [a.user_id, b.user_id, c.user_id] AS members,
       r1.n + r2.n + r3.n AS transfers,
       r1.amount + r2.amount + r3.amount AS total_amount
ORDER BY total_amount DESC, a.user_id, b.user_id, c.user_id
LIMIT $limit
