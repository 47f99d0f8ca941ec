// name: community_risk
// params: community (int, required): community id (the `community` property scoring writes back)
// params: low_score (float, 500.0): scores below this count as low
// description: A community's risk summary: size, scores, PDs, known defaults and low-score members.
// example: creditgraph query run community_risk --param community=7
// reads: User.community, User.score, User.pd
MATCH (u:User)
WHERE u.community = $community
WITH count(u) AS members,
     count(u.score) AS scored,
     avg(u.score) AS mean_score,
     min(u.score) AS min_score,
     avg(u.pd) AS mean_pd,
     count(u.defaulted) AS labelled,
     count(CASE WHEN u.defaulted THEN 1 END) AS defaulters,
     count(CASE WHEN u.score < $low_score THEN 1 END) AS low_score_members
RETURN $community AS community,
       members,
       scored,
       round(mean_score, 1) AS mean_score,
       min_score,
       round(mean_pd, 4) AS mean_pd,
       labelled,
       defaulters,
       CASE WHEN labelled = 0 THEN null ELSE round(1.0 * defaulters / labelled, 4) END AS default_rate,
       low_score_members
