// name: fraud_rings
// params: recent_days (int, 180): accounts opened at most this many days before the newest sign-up count as recent
// params: min_size (int, 3): fewest recent accounts sharing a device to form a candidate ring
// params: limit (int, 50): most rings to return
// description: Candidate fraud rings: recent accounts sharing devices, ranked by how densely they befriend each other, with the transfers between them.
// example: creditgraph query run fraud_rings --param recent_days=180 --param min_size=4
MATCH (x:User)
WITH max(x.signup_date) - duration({days: $recent_days}) AS cutoff
MATCH (d:Device)<-[:USES]-(u:User)
WHERE u.signup_date >= cutoff
WITH d, u
ORDER BY u.user_id
WITH d, collect(u.user_id) AS members
WHERE size(members) >= $min_size
WITH members, d
ORDER BY d.device_id
WITH members, collect(d.device_id) AS devices
WITH members, devices,
     COUNT { MATCH (a:User)-[:FRIEND]-(b:User)
             WHERE a.user_id IN members AND b.user_id IN members AND a.user_id < b.user_id } AS friend_pairs,
     COUNT { MATCH (a:User)-[:TRANSFER]->(b:User)
             WHERE a.user_id IN members AND b.user_id IN members } AS member_transfers,
     COUNT { MATCH (a:User)
             WHERE a.user_id IN members AND a.defaulted } AS defaulters
RETURN members,
       size(members) AS size,
       devices,
       friend_pairs,
       round(2.0 * friend_pairs / (size(members) * (size(members) - 1)), 3) AS friend_density,
       member_transfers,
       defaulters
ORDER BY friend_density DESC, size DESC, members
LIMIT $limit
