// name: fraud_rings (embedded dialect)
// Differs from the Neo4j text: no duration({days: ...}) (to_days() instead), and ORDER BY
// inside WITH needs a LIMIT, so member and device lists are sorted with list_sort(); lists
// cannot be sorted on, so rows are ordered by the members joined into one string.
MATCH (x:User)
WITH max(x.signup_date) - to_days($recent_days) AS cutoff
MATCH (d:Device)<-[:USES]-(u:User)
WHERE u.signup_date >= cutoff
WITH d, list_sort(collect(u.user_id)) AS members
WHERE size(members) >= $min_size
WITH members, list_sort(collect(d.device_id)) AS devices
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
ORDER BY friend_density DESC, size DESC, list_to_string(' ', members)
LIMIT $limit
