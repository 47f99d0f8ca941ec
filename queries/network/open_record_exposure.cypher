// name: open_record_exposure
// params: min_amount (float, 0.0): least amount a user must owe on open records to be listed
// params: limit (int, 100): most rows to return
// description: Users with open public records (court judgments, enforcement listings, tax arrears, bankruptcies) and their friends' exposure: friends with open records, defaulted friends, money friends sent them.
// example: creditgraph query run open_record_exposure --param min_amount=1000 --limit 20
// reads: User.score
// "Open" is the record's status as last loaded. A friendship stored both ways is one
// friend (DISTINCT pairs); a TRANSFER relationship already sums a pair's transfers.
MATCH (u:User)-[:HAS_RECORD]->(r:PublicRecord)
WHERE r.status = 'open'
WITH u, count(r) AS open_records, sum(r.amount) AS amount_open, max(r.filed_date) AS latest_filed
WHERE amount_open >= $min_amount
OPTIONAL MATCH (u)-[:FRIEND]-(f:User)
WITH DISTINCT u, open_records, amount_open, latest_filed, f
OPTIONAL MATCH (f)-[t:TRANSFER]->(u)
WITH u, open_records, amount_open, latest_filed, f, t,
     COUNT { MATCH (f)-[:HAS_RECORD]->(o:PublicRecord) WHERE o.status = 'open' } AS friend_open
WITH u, open_records, amount_open, latest_filed,
     count(f) AS friends,
     count(CASE WHEN friend_open > 0 THEN 1 END) AS friends_with_open_records,
     count(CASE WHEN f.defaulted THEN 1 END) AS defaulted_friends,
     sum(coalesce(t.amount, 0.0)) AS received_from_friends
RETURN u.user_id AS user_id,
       open_records,
       round(amount_open, 2) AS amount_open,
       latest_filed,
       friends,
       friends_with_open_records,
       defaulted_friends,
       round(received_from_friends, 2) AS received_from_friends,
       u.score AS score
ORDER BY amount_open DESC, user_id
LIMIT $limit
