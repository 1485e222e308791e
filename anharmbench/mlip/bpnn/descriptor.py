"""Evaluation of a set of symmetry functions on an edge list, in torch (float64).

:class:`Descriptor` computes the raw (unscaled) functions of
:mod:`.symmetry_functions` for every atom, and with :meth:`Descriptor.with_jacobian`
their closed-form derivatives by the edge vectors (:class:`DescriptorJacobian`, n2p2's
approach to forces), so that autograd runs only through the networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from anharmbench.mlip.bpnn.symmetry_functions import SymmetryFunctionSet

__all__ = ["Descriptor", "DescriptorJacobian"]


class Descriptor(torch.nn.Module):
    """Evaluates a :class:`SymmetryFunctionSet` on an edge list, vectorized, float64.

    Parameters
    ----------
    sf_set
        The functions.
    elements
        The model's elements in type order (atom type ``t`` is ``elements[t]``).

    Notes
    -----
    Each atom's features are laid out in its own element's n2p2 order in the first
    ``n_features(element)`` columns of a ``(N, width)`` buffer (``width`` = the largest
    input size). The functions are factored into the distinct terms they share:
    radial terms by ``(eta, r_shift, r_cut)``; angular terms into angular factors
    ``(1 + lambda cos)^zeta`` per distinct ``(lambda, zeta)``, radial factors per
    distinct ``(narrow, eta, r_shift, r_cut)`` and cutoff factors per distinct
    ``r_cut``. Each edge (radial) or pair of edges of one centre (angular) computes
    every distinct term once; the terms are summed per atom and neighbour element (or
    unordered pair of neighbour elements) with row-wise scatter-adds, and each atom's
    columns are then gathered from these sums by a table indexed by its element (a
    zero where an element has fewer functions). Radial terms sum over edges; angular
    terms over the unordered pairs of edges of a centre within the angular cutoff,
    enumerated inside the forward pass (data-dependent sizes, which torch.export
    supports).
    """

    def __init__(self, sf_set: SymmetryFunctionSet, elements: Sequence[str]) -> None:
        super().__init__()
        elements = tuple(elements)
        sf_set.check_elements(elements)
        self.elements = elements
        self.cutoff = sf_set.cutoff
        n_types = len(elements)
        self.n_types = n_types
        type_of = {e: i for i, e in enumerate(elements)}
        self.n_features = [sf_set.n_features(e) for e in elements]
        self.width = max(self.n_features)
        sink = self.width
        self.r_max = sf_set.r_max
        self.r_angular = sf_set.r_angular

        def index(table: dict, key: tuple) -> int:
            return table.setdefault(key, len(table))

        rad_terms: dict[tuple, int] = {}
        rad_cols: dict[tuple[int, int], int] = {}  # (pair, term) -> column
        lz_terms: dict[tuple, int] = {}
        x_terms: dict[tuple, int] = {}
        ang_terms: dict[tuple, int] = {}
        ang_cols: dict[tuple[int, int], int] = {}
        for el in elements:
            c = type_of[el]
            for col, sf in enumerate(sf_set.for_element(el, elements)):
                if sf.kind == 2:
                    k = index(rad_terms, (sf.eta, sf.r_shift, sf.r_cut))
                    rad_cols[(c * n_types + type_of[sf.neighbors[0]], k)] = col
                else:
                    lz = index(lz_terms, (sf.lam, sf.zeta))
                    x = index(x_terms, (float(sf.kind == 3), sf.eta, sf.r_shift, sf.r_cut))
                    k = index(ang_terms, (lz, x, 2.0 ** (1.0 - sf.zeta)))
                    a, b = (type_of[e] for e in sf.neighbors)
                    for p, q in {(a, b), (b, a)}:
                        ang_cols[((c * n_types + p) * n_types + q, k)] = col
        f64 = {"dtype": torch.float64}
        # radial terms (C_r,): eta, r_shift, and the index of their r_cut among rc_rad
        rc_rad = sorted({t[2] for t in rad_terms}) or [1.0]
        r_par = torch.tensor([[t[0], t[1]] for t in rad_terms] or [[0.0, 0.0]], **f64)
        r_rc = torch.tensor([rc_rad.index(t[2]) for t in rad_terms] or [0], dtype=torch.long)
        r_col = torch.full((n_types * n_types, max(1, len(rad_terms))), sink, dtype=torch.long)
        for (pair, k), col in rad_cols.items():
            r_col[pair, k] = col
        self.register_buffer("rad_params", r_par)
        self.register_buffer("rad_rc", torch.tensor(rc_rad, **f64))
        self.register_buffer("rad_rc_index", r_rc)
        self.register_buffer("rad_cols", r_col)
        # angular: (lambda, zeta); (narrow, eta, r_shift, rc index); terms (lz, x, norm)
        self.has_angular = bool(ang_terms)
        rc_ang = sorted({t[3] for t in x_terms}) or [1.0]
        lz = torch.tensor(list(lz_terms) or [(1.0, 1.0)], **f64)
        xs = torch.tensor(
            [[t[0], t[1], t[2], float(rc_ang.index(t[3]))] for t in x_terms] or [[0, 0, 0, 0]],
            **f64,
        )
        terms = list(ang_terms) or [(0, 0, 1.0)]
        a_col = torch.full((n_types**3, len(terms)), sink, dtype=torch.long)
        for (trip, k), col in ang_cols.items():
            a_col[trip, k] = col
        self.register_buffer("ang_lz", lz)
        self.ang_zetas = [float(z) for z in lz[:, 1].tolist()]
        self.register_buffer("ang_x", xs[:, :3].contiguous())
        self.register_buffer("ang_x_rc_index", xs[:, 3].to(torch.long))
        self.register_buffer("ang_rc", torch.tensor(rc_ang, **f64))
        self.register_buffer("ang_term_lz", torch.tensor([t[0] for t in terms], dtype=torch.long))
        self.register_buffer("ang_term_x", torch.tensor([t[1] for t in terms], dtype=torch.long))
        self.register_buffer("ang_term_norm", torch.tensor([t[2] for t in terms], **f64))
        self.register_buffer("ang_cols", a_col)
        # forward assembly: per atom, the radial sums (T neighbour types x C_r terms), the
        # angular sums (T*T unordered neighbour pairs x C_a terms) and a zero; column col of
        # an atom of type c reads slot col_source[c, col]
        c_r, c_a = r_par.shape[0], len(terms)
        zero_slot = n_types * c_r + n_types * n_types * c_a
        source = torch.full((n_types, self.width), zero_slot, dtype=torch.long)
        for (pair, k), col in rad_cols.items():
            c, nt = divmod(pair, n_types)
            source[c, col] = nt * c_r + k
        for (trip, k), col in ang_cols.items():
            c, rest = divmod(trip, n_types * n_types)
            p, q = divmod(rest, n_types)
            pt = min(p, q) * n_types + max(p, q)
            source[c, col] = n_types * c_r + pt * c_a + k
        self.register_buffer("col_source", source)

    def forward(
        self, vectors: torch.Tensor, edge_index: torch.Tensor, atom_types: torch.Tensor
    ) -> torch.Tensor:
        """Raw (unscaled) symmetry functions.

        Parameters
        ----------
        vectors
            ``(E, 3)`` float64 edge vectors ``x_j - x_i`` (with lattice shifts), Angstrom.
        edge_index
            ``(2, E)`` int64, rows ``i`` (centre) and ``j`` (neighbour). Every neighbour
            within ``r_max`` of every atom must appear (both directions, all images);
            edges beyond a function's cutoff contribute nothing.
        atom_types
            ``(N,)`` int64 type of each atom.

        Returns
        -------
        torch.Tensor
            ``(N, width)`` float64; row ``i`` holds atom ``i``'s functions in its
            element's n2p2 order, zero-padded beyond ``n_features``.
        """
        return self._evaluate(vectors, edge_index, atom_types, jacobian=False)[0]

    def with_jacobian(
        self, vectors: torch.Tensor, edge_index: torch.Tensor, atom_types: torch.Tensor
    ) -> tuple[torch.Tensor, DescriptorJacobian]:
        """Raw functions ``(N, width)`` and their analytic derivatives by the edge vectors.

        The derivatives are computed in closed form (no autograd graph), as n2p2 does;
        :meth:`DescriptorJacobian.edge_gradient` turns ``dE/dG`` into ``dE/dv``.
        """
        g, jac = self._evaluate(vectors, edge_index, atom_types, jacobian=True)
        assert jac is not None  # internal invariant
        return g, jac

    @staticmethod
    def _power(base: torch.Tensor, zeta: float) -> torch.Tensor:
        """``base^(zeta - 1)`` for ``base > 0``: repeated squaring for integer zeta."""
        n = int(round(zeta)) - 1
        if abs(zeta - round(zeta)) < 1e-15 and 0 <= n <= 64:
            out = torch.ones_like(base)
            sq = base
            while n:
                if n & 1:
                    out = out * sq
                n >>= 1
                if n:
                    sq = sq * sq
            return out
        return torch.pow(base, zeta - 1.0)

    def _evaluate(
        self,
        vectors: torch.Tensor,
        edge_index: torch.Tensor,
        atom_types: torch.Tensor,
        *,
        jacobian: bool,
    ) -> tuple[torch.Tensor, DescriptorJacobian | None]:
        n_atoms = atom_types.shape[0]
        w = self.width + 1
        n_edges = vectors.shape[0]
        src, dst = edge_index[0], edge_index[1]
        r = torch.linalg.vector_norm(vectors, dim=-1)
        like = {"dtype": vectors.dtype, "device": vectors.device}

        # ---- radial: (E, C_r) distinct terms, each to its column (or the sink)
        rr = r.unsqueeze(-1)
        fc, dfc = self.cutoff.value_and_derivative(rr, self.rad_rc, derivative=jacobian)
        fc = fc[:, self.rad_rc_index]
        eta, rs = self.rad_params[:, 0], self.rad_params[:, 1]
        d = rr - rs
        gauss = torch.exp(-eta * d * d)
        val = gauss * fc
        n_t = self.n_types
        rad_sum = torch.zeros(n_atoms * n_t, val.shape[1], dtype=val.dtype, device=val.device)
        rad_sum = rad_sum.index_add(0, src * n_t + atom_types[dst], val)
        blocks = [rad_sum.view(n_atoms, -1)]
        jac_rad = None
        if jacobian:
            assert dfc is not None  # internal invariant
            cols = self.rad_cols[atom_types[src] * self.n_types + atom_types[dst]]
            dval = gauss * (dfc[:, self.rad_rc_index] - 2.0 * eta * d * fc)
            jac_rad = dval.unsqueeze(-1) * (vectors / rr).unsqueeze(1)  # (E, C_r, 3)

        # ---- angular: unordered pairs {j, k} of edges of one centre within r_angular
        a_idx = torch.zeros(0, dtype=torch.long, device=r.device)
        jac_ang = torch.zeros(0, w, 3, dtype=vectors.dtype, device=vectors.device)
        if self.has_angular:
            a_idx = torch.nonzero(r < self.r_angular).squeeze(-1)
            a_src, order = torch.sort(src[a_idx], stable=True)
            a_idx = a_idx[order]
            n_ang = a_idx.shape[0]
            counts = torch.zeros(n_atoms, dtype=torch.long, device=r.device)
            counts = counts.index_add(0, a_src, torch.ones_like(a_src))
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(n_ang, device=r.device) - starts[a_src]
            n_after = counts[a_src] - rank - 1  # partners k after j in the centre's group
            first = torch.repeat_interleave(torch.arange(n_ang, device=r.device), n_after)
            offsets = torch.cumsum(n_after, 0) - n_after
            second = first + 1 + (torch.arange(first.shape[0], device=r.device) - offsets[first])
            ej = a_idx[first]
            ek = a_idx[second]
            centre = src[ej]
            vj = vectors[ej]
            vk = vectors[ek]
            vjk = vk - vj
            rij = r[ej].unsqueeze(-1)
            rik = r[ek].unsqueeze(-1)
            rjk = torch.linalg.vector_norm(vjk, dim=-1).unsqueeze(-1)
            cos = (vj * vk).sum(-1, keepdim=True) / (rij * rik)
            # angular factors (P, n_lz): A = (1 + lambda cos)^zeta, dA/dcos
            base = 1.0 + self.ang_lz[:, 0] * cos
            positive = base > 0
            safe = torch.where(positive, base, torch.ones_like(base))
            powers = torch.stack(
                [self._power(safe[:, m], z) for m, z in enumerate(self.ang_zetas)], dim=-1
            )
            zero = torch.zeros_like(base)
            ang = torch.where(positive, powers * safe, zero)
            # radial factors (P, n_x)
            f_ij, df_ij = self.cutoff.value_and_derivative(rij, self.ang_rc, derivative=jacobian)
            f_ik, df_ik = self.cutoff.value_and_derivative(rik, self.ang_rc, derivative=jacobian)
            f_jk, df_jk = self.cutoff.value_and_derivative(rjk, self.ang_rc, derivative=jacobian)
            ix = self.ang_x_rc_index
            f_ij, f_ik, f_jk = f_ij[:, ix], f_ik[:, ix], f_jk[:, ix]
            narrow, eta_a, rs_a = self.ang_x.unbind(-1)
            is_narrow = narrow > 0
            f_jk = torch.where(is_narrow, f_jk, torch.ones_like(f_jk))
            dij, dik, djk = rij - rs_a, rik - rs_a, rjk - rs_a
            expo = torch.exp(-eta_a * (dij * dij + dik * dik + narrow * djk * djk))
            rad = expo * f_ij * f_ik * f_jk
            t_lz, t_x = self.ang_term_lz, self.ang_term_x
            val = self.ang_term_norm * ang[:, t_lz] * rad[:, t_x]
            tj, tk = atom_types[dst[ej]], atom_types[dst[ek]]
            slot = centre * (n_t * n_t) + torch.minimum(tj, tk) * n_t + torch.maximum(tj, tk)
            ang_sum = torch.zeros(
                n_atoms * n_t * n_t, val.shape[1], dtype=val.dtype, device=val.device
            )
            blocks.append(ang_sum.index_add(0, slot, val).view(n_atoms, -1))
            if jacobian:
                a_cols = self.ang_cols[(atom_types[centre] * n_t + tj) * n_t + tk]
                assert df_ij is not None and df_ik is not None and df_jk is not None
                dang = torch.where(positive, self.ang_lz[:, 0] * self.ang_lz[:, 1] * powers, zero)
                df_jk = torch.where(is_narrow, df_jk[:, ix], torch.zeros_like(f_jk))
                g_ij = expo * f_ik * f_jk * (df_ij[:, ix] - 2.0 * eta_a * dij * f_ij)
                g_ik = expo * f_ij * f_jk * (df_ik[:, ix] - 2.0 * eta_a * dik * f_ik)
                g_jk = expo * f_ij * f_ik * (df_jk - 2.0 * eta_a * narrow * djk * f_jk)
                inv = 1.0 / (rij * rik)
                dcos_dj = vk * inv - cos * vj / (rij * rij)  # (P, 3)
                dcos_dk = vj * inv - cos * vk / (rik * rik)
                norm = self.ang_term_norm.unsqueeze(-1)
                a_t = ang[:, t_lz].unsqueeze(-1)
                da_t = (dang[:, t_lz] * rad[:, t_x]).unsqueeze(-1)
                ujk = (vjk / rjk).unsqueeze(1)
                d_j = norm * (
                    da_t * dcos_dj.unsqueeze(1)
                    + a_t
                    * (
                        g_ij[:, t_x].unsqueeze(-1) * (vj / rij).unsqueeze(1)
                        - g_jk[:, t_x].unsqueeze(-1) * ujk
                    )
                )
                d_k = norm * (
                    da_t * dcos_dk.unsqueeze(1)
                    + a_t
                    * (
                        g_ik[:, t_x].unsqueeze(-1) * (vk / rik).unsqueeze(1)
                        + g_jk[:, t_x].unsqueeze(-1) * ujk
                    )
                )
                jac_ang = torch.zeros(n_ang * w, 3, dtype=vectors.dtype, device=vectors.device)
                jac_ang = jac_ang.index_add(
                    0, (first.unsqueeze(-1) * w + a_cols).reshape(-1), d_j.reshape(-1, 3)
                )
                jac_ang = jac_ang.index_add(
                    0, (second.unsqueeze(-1) * w + a_cols).reshape(-1), d_k.reshape(-1, 3)
                )
                jac_ang = jac_ang.view(n_ang, w, 3)
        else:
            blocks.append(torch.zeros(n_atoms, self.ang_cols.shape[1] * n_t * n_t, **like))
        blocks.append(torch.zeros(n_atoms, 1, **like))
        g = torch.cat(blocks, dim=1).gather(1, self.col_source[atom_types])
        if not jacobian:
            return g, None
        assert jac_rad is not None
        return g, DescriptorJacobian(
            n_edges=n_edges,
            width=self.width,
            radial=jac_rad,
            radial_cols=cols,
            angular_edges=a_idx,
            angular=jac_ang,
        )


@dataclass
class DescriptorJacobian:
    """Derivatives of the raw symmetry functions by the edge vectors (sparse layout).

    Atom ``i``'s functions depend only on the vectors of the edges centred on ``i``, so
    ``dG_i/dv_e`` is stored per edge ``e`` (centre ``i = src[e]``).

    Attributes
    ----------
    n_edges, width
        Number of edges and of feature columns.
    radial
        ``(E, C_r, 3)``: derivative of each distinct radial term of edge ``e``; term
        ``c`` adds to column ``radial_cols[e, c]`` (``width`` = the dropped sink).
    radial_cols
        ``(E, C_r)`` int64.
    angular_edges
        ``(E_a,)`` int64 edges within the angular cutoff.
    angular
        ``(E_a, width + 1, 3)``: ``dG_{src[e], col}/dv_e`` of the angular functions
        (last column: sink).
    """

    n_edges: int
    width: int
    radial: torch.Tensor
    radial_cols: torch.Tensor
    angular_edges: torch.Tensor
    angular: torch.Tensor

    def edge_gradient(self, src: torch.Tensor, de_dg: torch.Tensor) -> torch.Tensor:
        """``dE/dv`` ``(E, 3)`` from ``dE/dG`` ``(N, width)`` of the raw functions.

        Linear in ``de_dg`` and differentiable with respect to it (training on forces
        differentiates only through the networks).
        """
        pad = torch.cat([de_dg, torch.zeros_like(de_dg[:, :1])], dim=1)  # sink column
        per_edge = pad[src]
        grad = (per_edge.gather(1, self.radial_cols).unsqueeze(-1) * self.radial).sum(1)
        if self.angular_edges.shape[0]:
            ang = (per_edge[self.angular_edges].unsqueeze(-1) * self.angular).sum(1)
            grad = grad.index_add(0, self.angular_edges, ang)
        return grad

    def nbytes(self) -> int:
        """Memory held, bytes."""
        return sum(
            t.numel() * t.element_size()
            for t in (self.radial, self.radial_cols, self.angular_edges, self.angular)
        )
