// name: shared_merchants
// params: user_a (str, required): the first user
// params: user_b (str, required): the second user
// description: Merchants both users pay, with each user's payment count and amount there.
// example: creditgraph query run shared_merchants --param user_a=u0000001 --param user_b=u0000042
MATCH (a:User {user_id: $user_a})-[pa:PAYS]->(m:Merchant)<-[pb:PAYS]-(b:User {user_id: $user_b})
WHERE a <> b
RETURN m.merchant_id AS merchant_id,
       m.category AS category,
       m.city AS city,
       pa.n AS a_payments,
       pa.amount AS a_amount,
       pb.n AS b_payments,
       pb.amount AS b_amount
ORDER BY a_amount + b_amount DESC, merchant_id
