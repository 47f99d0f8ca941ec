// name: risky_merchants
// params: min_customers (int, 5): fewest customers with a known outcome for a merchant to be ranked
// params: limit (int, 50): most merchants to return
// description: Merchants whose customers default most (share of customers with a known outcome who defaulted).
// example: creditgraph query run risky_merchants --param min_customers=10 --limit 20
// reads: User.score
MATCH (c:User)-[:PAYS]->(m:Merchant)
WITH m,
     count(c) AS customers,
     count(c.defaulted) AS labelled,
     count(CASE WHEN c.defaulted THEN 1 END) AS defaulters,
     avg(c.score) AS mean_customer_score
WHERE labelled >= $min_customers
RETURN m.merchant_id AS merchant_id,
       m.category AS category,
       m.city AS city,
       customers,
       labelled,
       defaulters,
       round(1.0 * defaulters / labelled, 4) AS default_rate,
       round(mean_customer_score, 1) AS mean_customer_score
ORDER BY default_rate DESC, customers DESC, merchant_id
LIMIT $limit
