// name: shared_devices
// params: min_users (int, 3): fewest accounts on one device to list it
// params: limit (int, 100): most devices to return
// description: Devices used by many accounts, with how many defaulted and how recent the newest account is.
// example: creditgraph query run shared_devices --param min_users=4
MATCH (d:Device)<-[:USES]-(u:User)
WITH d,
     count(u) AS users,
     count(CASE WHEN u.defaulted THEN 1 END) AS defaulters,
     min(u.signup_date) AS oldest_signup,
     max(u.signup_date) AS newest_signup
WHERE users >= $min_users
RETURN d.device_id AS device_id,
       users,
       defaulters,
       oldest_signup,
       newest_signup
ORDER BY users DESC, defaulters DESC, device_id
LIMIT $limit
