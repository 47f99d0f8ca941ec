// name: owner_customer_quality
// params: owner_id (str, required): the user who owns the business(es)
// params: low_score (float, 500.0): customer scores below this count as low
// description: A small-business owner's customer base per merchant: size, repeat customers, revenue, scores and defaults.
// example: creditgraph query run owner_customer_quality --param owner_id=u0000042
// reads: User.score, User.pd
MATCH (o:User {user_id: $owner_id})-[:OWNS]->(m:Merchant)
OPTIONAL MATCH (c:User)-[p:PAYS]->(m)
WITH o, m,
     count(c) AS customers,
     count(CASE WHEN p.n > 1 THEN 1 END) AS repeat_customers,
     sum(p.n) AS payments,
     sum(p.amount) AS revenue,
     avg(c.score) AS mean_customer_score,
     avg(c.pd) AS mean_customer_pd,
     count(CASE WHEN c.score < $low_score THEN 1 END) AS low_score_customers,
     count(c.defaulted) AS labelled,
     count(CASE WHEN c.defaulted THEN 1 END) AS defaulters
RETURN m.merchant_id AS merchant_id,
       m.category AS category,
       o.score AS owner_score,
       customers,
       repeat_customers,
       payments,
       round(revenue, 2) AS revenue,
       round(mean_customer_score, 1) AS mean_customer_score,
       round(mean_customer_pd, 4) AS mean_customer_pd,
       low_score_customers,
       CASE WHEN labelled = 0 THEN null ELSE round(1.0 * defaulters / labelled, 4) END AS default_rate
ORDER BY revenue DESC, merchant_id
