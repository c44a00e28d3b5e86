"""Interaction data: who interacted with what, read as one basket of distinct items per user.

An interaction table has a row per event (a purchase line, a rating, a view): a user
column, an item column, and optionally other columns (a rating or quantity, a timestamp,
user or item attributes). The unit of privacy is the **user**: a user with all their
rows. Rows without a user are left out (nothing bounds what one unknown person
contributes through them); rows without an item carry no interaction and are left out
too. What the models read is each user's set of distinct items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError

__all__ = ["Baskets", "baskets_from_frame", "item_key"]


def item_key(values: pd.Series) -> pd.Series:
    """Items as text, so ``85123A``, ``22423`` and ``22423.0`` read alike (the item column's values)."""
    def text(value):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return values.map(text)


@dataclass
class Baskets:
    """Each user's distinct items: a CSR matrix users x items (1 where the user holds the item).

    ``items`` names the columns (the item values as text); ``users`` holds the user ids, for
    the steward's side only (they are never released).
    """

    matrix: sp.csr_matrix
    items: np.ndarray
    users: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Distinct items per user."""
        return np.diff(self.matrix.indptr)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def item_lists(self) -> list[np.ndarray]:
        m = self.matrix
        return [m.indices[m.indptr[u]:m.indptr[u + 1]] for u in range(m.shape[0])]

    def restricted(self, items: np.ndarray) -> sp.csr_matrix:
        """The users x ``items`` matrix (items as text; items this data lacks are empty columns)."""
        index = pd.Index(self.items).get_indexer(items)
        present = index >= 0
        out = sp.lil_matrix((len(self), len(items)), dtype=np.float32)
        if present.any():
            sub = self.matrix[:, index[present]].tocsc()
            out[:, np.flatnonzero(present)] = sub
        return out.tocsr()


def baskets_from_frame(frame: pd.DataFrame, *, user: str, item: str) -> Baskets:
    """The users' baskets of distinct items; rows without a user or an item are left out."""
    for role, name in (("user", user), ("item", item)):
        if name not in frame.columns:
            raise DataError(f"the {role} column {name!r} is not in the data; the columns are "
                            + ", ".join(map(str, frame.columns)))
    if user == item:
        raise DataError("the user and item columns must differ")
    rows = frame[[user, item]].dropna()
    users, user_codes = np.unique(rows[user].astype(str).to_numpy(), return_inverse=True)
    items, item_codes = np.unique(item_key(rows[item]).to_numpy(), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (user_codes, item_codes)),
                           shape=(len(users), len(items)))
    matrix.data[:] = 1.0  # duplicates summed by the constructor: one interaction per (user, item)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return Baskets(matrix=matrix, items=items.astype(object), users=users.astype(object))
