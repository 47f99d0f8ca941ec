"""Public records, in credit history: judgments, enforcement listings, tax arrears, bankruptcies.

As of each user's observation date: a record counts once filed, and it is open then
unless satisfied by then (one satisfied later was still open). Dismissed records never
count against anyone and are left out of every column.

| column | meaning |
|---|---|
| open_court_judgments | court judgments open at the observation date |
| open_enforcement_listings | enforcement-list entries open at the observation date |
| open_tax_arrears | tax arrears open at the observation date |
| open_bankruptcies | bankruptcies not yet discharged at the observation date |
| public_record_amount_outstanding | total amount of the open records |
| months_since_public_record | months since the latest record was filed (NaN: none) |
| public_record_satisfied_share | share of records satisfied (1 with none: nothing unpaid) |

The source is optional: without a ``public_records`` table none of these columns exist.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.membership import mapped
from creditgraph.scoring.features.dates import before_observation

# The open-record count of each kind (ingest.schemas.RECORD_KIND), one column each so that
# a reason can name the kind.
OPEN_COLUMNS = {
    "court_judgment": "open_court_judgments",
    "enforcement_list": "open_enforcement_listings",
    "tax_arrears": "open_tax_arrears",
    "bankruptcy": "open_bankruptcies",
}
PUBLIC_RECORD_COLUMNS = (
    *OPEN_COLUMNS.values(),
    "public_record_amount_outstanding",
    "months_since_public_record",
    "public_record_satisfied_share",
)


def public_record_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    index = observed.index
    if "public_records" not in tables:
        return pd.DataFrame(index=index)
    rows = before_observation(tables["public_records"], "filed_date", observed)
    rows = rows[rows["status"] != "dismissed"]
    cutoff = mapped(rows["user_id"], observed)
    settled = (rows["status"] == "satisfied") & (
        pd.to_datetime(rows["satisfied_date"]).to_numpy() <= cutoff
    )
    frame = rows.assign(
        settled=settled.astype(float),
        owed=rows["amount"].astype(float).where(~settled, 0.0),
        filed=pd.to_datetime(rows["filed_date"]),
        kind=pd.Categorical(rows["kind"], categories=list(OPEN_COLUMNS)),
    )
    open_counts = (
        frame[~settled]
        .groupby(["user_id", "kind"], observed=False)
        .size()
        .unstack("kind")
        .rename(columns=OPEN_COLUMNS)
        .astype(float)
    )
    grouped = frame.groupby("user_id")
    out = pd.concat(
        [
            open_counts,
            pd.DataFrame(
                {
                    "public_record_amount_outstanding": grouped["owed"].sum(),
                    "latest_filed": grouped["filed"].max(),
                    "public_record_satisfied_share": grouped["settled"].mean(),
                }
            ),
        ],
        axis=1,
    ).reindex(index=index)
    month = np.timedelta64(30, "D") / np.timedelta64(1, "D")
    out["months_since_public_record"] = (observed - out.pop("latest_filed")).dt.days / month
    # No record is a fact here (the file covers everyone): nothing open, nothing unpaid.
    counts = [*OPEN_COLUMNS.values(), "public_record_amount_outstanding"]
    out[counts] = out.reindex(columns=counts).fillna(0.0)
    out["public_record_satisfied_share"] = out["public_record_satisfied_share"].fillna(1.0)
    return out[list(PUBLIC_RECORD_COLUMNS)]
