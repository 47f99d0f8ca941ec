"""Personal characteristics: stability and verification, never protected identity fields.

| column | meaning |
|---|---|
| age | age in years |
| account_age_days | days from signup to observation |
| phone_tenure_months / address_tenure_months | stability of contact details |
| real_name_verified | 1 when identity was verified |
| education_level | 0 (none) … 4 (postgraduate) |
| occupation | occupation band (categorical) |
"""

from __future__ import annotations

import pandas as pd

from creditgraph.ingest.schemas import EDUCATION, OCCUPATION


def characteristic_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    users = tables["users"].set_index("user_id").reindex(observed.index)
    signup = pd.to_datetime(users["signup_date"])
    return pd.DataFrame(
        {
            "age": users["age"].astype(float),
            "account_age_days": (observed - signup).dt.days.astype(float),
            "phone_tenure_months": users["phone_tenure_months"].astype(float),
            "address_tenure_months": users["address_tenure_months"].astype(float),
            "real_name_verified": users["real_name_verified"].astype(float),
            "education_level": users["education"]
            .map({level: float(i) for i, level in enumerate(EDUCATION)})
            .astype(float),
            "occupation": pd.Categorical(users["occupation"], categories=OCCUPATION),
        },
        index=observed.index,
    )
