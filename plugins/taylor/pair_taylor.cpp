/* ----------------------------------------------------------------------
   anharmbench: pair style taylor (see pair_taylor.h and plugins/README.md)

   Energy  E = sum_g sum_terms c * prod_j u[P_g(q_j)]        (eV)
           (P_g: the file's lattice translations; one identity row for a file
           that lists every term)
   Forces  f = -dE/du, per atom, rotated into LAMMPS's frame (eV/Angstrom)
   Virial  W_ab = sum_i sym(u_ia f_ib)             (eV), i.e. W = -dE/d(strain)
           when the reference lattice is strained together with the cell;
           see plugins/README.md for why this, and not sum_i x_ia f_ib.

   Parallel: every rank holds all terms and the full displacement vector
   (MPI_Allreduce over the owned atoms); rank r evaluates the r-th contiguous
   share of the (translation, term) pairs, the gradient is summed with
   MPI_Allreduce, and each rank applies it to the atoms it owns. The pair style
   needs no neighbor list and ghost atoms (init_style requests only an
   occasional list that is never built).
------------------------------------------------------------------------- */

#include "pair_taylor.h"
#include "taylor_file.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "neighbor.h"
#include "utils.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

using namespace LAMMPS_NS;
using anharmbench::invert3;
using anharmbench::lammps_triangle;
using anharmbench::read_taylor_file;
using anharmbench::TAYLOR_NAME_LEN;
using anharmbench::TaylorFile;

namespace {

// relative tolerance for "the box is the file's cell" and "the tilt is an integer"
constexpr double BOX_TOL = 1.0e-6;
// pair cutoff reported to LAMMPS (Angstrom); only sizes the ghost-atom shell
constexpr double NOMINAL_CUTOFF = 0.1;

// broadcast a large array in chunks that fit an int count
template <typename T> void bcast_array(T *data, bigint count, MPI_Datatype type, MPI_Comm world)
{
  const bigint chunk = 1 << 26;
  for (bigint start = 0; start < count; start += chunk) {
    const bigint n = (count - start < chunk) ? count - start : chunk;
    MPI_Bcast(data + start, (int) n, type, 0, world);
  }
}

}    // namespace

/* ---------------------------------------------------------------------- */

PairTaylor::PairTaylor(LAMMPS *lmp) :
    PairAnharmbenchBase(lmp, "taylor", "FILE", "element name"), natoms_file(0), ntrans(1)
{
  // the virial is tallied from displacements in compute() (no_virial_fdotr_compute)
  std::memset(cell, 0, sizeof(cell));
  std::memset(cellinv, 0, sizeof(cellinv));
  std::memset(rot, 0, sizeof(rot));
  std::memset(boxref, 0, sizeof(boxref));
}

/* ----------------------------------------------------------------------
   pair_coeff * * FILE El_1 ... El_ntypes
------------------------------------------------------------------------- */

void PairTaylor::coeff(int narg, char **arg)
{
  read_coeff_args(narg, arg, 1);
  read_file(arg[2]);
  // type -> index into the file's element names (-1: element absent from the file,
  // an error only if an atom of that type exists; checked in init_style)
  type_element = map_type_args(file_elements);
  set_all_pairs();
}

/* ----------------------------------------------------------------------
   read and check a Taylor file on rank 0 (taylor_file.cpp), then broadcast it
------------------------------------------------------------------------- */

void PairTaylor::read_file(const char *file)
{
  filename = file;
  TaylorFile model;
  std::string err;
  if (comm->me == 0) err = read_taylor_file(filename, model);
  // share the outcome: every rank stops with the same message
  agree_on_error(FLERR, err);

  int head[4] = {model.natoms(), (int) model.elements.size(), (int) model.orders.size(),
                 model.ntrans()};    // natoms, nelements, norders, ntrans
  MPI_Bcast(head, 4, MPI_INT, 0, world);
  const int nat = head[0], nel = head[1], nord = head[2];
  natoms_file = nat;
  ntrans = head[3];

  // element names as NUL-padded fixed-width fields (the file's own width)
  std::vector<char> names((size_t) nel * TAYLOR_NAME_LEN, '\0');
  if (comm->me == 0)
    for (int e = 0; e < nel; e++)
      model.elements[e].copy(&names[(size_t) e * TAYLOR_NAME_LEN], TAYLOR_NAME_LEN);
  MPI_Bcast(names.data(), nel * TAYLOR_NAME_LEN, MPI_CHAR, 0, world);
  file_elements.clear();
  for (int e = 0; e < nel; e++) {
    const char *p = &names[(size_t) e * TAYLOR_NAME_LEN];
    file_elements.emplace_back(p, strnlen(p, TAYLOR_NAME_LEN));
  }

  atom_element = std::move(model.atom_element);
  atom_element.resize(nat);
  MPI_Bcast(atom_element.data(), nat, MPI_INT, 0, world);
  MPI_Bcast(&model.cell[0][0], 9, MPI_DOUBLE, 0, world);
  std::memcpy(cell, model.cell, sizeof(cell));
  xref = std::move(model.xref);
  xref.resize(3 * (size_t) nat);
  bcast_array(xref.data(), 3 * (bigint) nat, MPI_DOUBLE, world);
  std::vector<uint32_t> &table = model.translations;
  table.resize((size_t) ntrans * nat);
  bcast_array(table.data(), (bigint) ntrans * nat, MPI_UINT32_T, world);
  trans3.resize((size_t) ntrans * 3 * nat);
  for (size_t g = 0; g < (size_t) ntrans; g++)
    for (size_t i = 0; i < (size_t) nat; i++)
      for (int a = 0; a < 3; a++)
        trans3[(g * nat + i) * 3 + a] = 3 * (int) table[g * nat + i] + a;

  orders = std::move(model.orders);
  orders.resize(nord);
  for (auto &ord : orders) {
    bigint nk[2] = {ord.n, (bigint) ord.nterms};
    MPI_Bcast(nk, 2, MPI_LMP_BIGINT, 0, world);
    ord.n = (int) nk[0];
    ord.nterms = nk[1];
    ord.index.resize((size_t) ord.nterms * ord.n);
    ord.coeff.resize((size_t) ord.nterms);
    bcast_array(ord.index.data(), ord.nterms * ord.n, MPI_INT, world);
    bcast_array(ord.coeff.data(), ord.nterms, MPI_DOUBLE, world);
  }

  const double det = invert3(cell, cellinv);
  if (!(std::fabs(det) > 1.0e-8))
    error->all(FLERR, "Taylor file {}: the cell is degenerate (volume {})", file, det);
  setup_rotation();

  u.assign(3 * (size_t) nat, 0.0);
  grad.assign(3 * (size_t) nat, 0.0);
  ug.assign(3 * (size_t) nat, 0.0);
  gg.assign(3 * (size_t) nat, 0.0);

  if (comm->me == 0) {
    bigint nterms = 0;
    std::string list;
    for (const auto &ord : orders) {
      nterms += ord.nterms;
      list += fmt::format(" {}:{}", ord.n, ord.nterms);
    }
    utils::logmesg(lmp,
                   "Reading Taylor file {}: {} atoms, {} terms (order:count{}), {} translation{}\n",
                   file, nat, nterms, list, ntrans, ntrans == 1 ? "" : "s");
  }
}

/* ----------------------------------------------------------------------
   rotation from LAMMPS's frame to the file's: the LAMMPS box of a cell is the
   cell rotated so that a || x and b lies in the xy plane (as ASE's Prism does;
   an improper rotation when the file cell is left-handed)
     cell = L * rot^T   =>   rot = cell^T * (L^T)^-1
------------------------------------------------------------------------- */

void PairTaylor::setup_rotation()
{
  double l[3][3], lt[3][3], ltinv[3][3];
  lammps_triangle(cell, l);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) lt[a][b] = l[b][a];
  if (invert3(lt, ltinv) == 0.0)
    error->all(FLERR, "Taylor file {}: the cell is degenerate", filename);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      rot[a][b] = 0.0;
      for (int k = 0; k < 3; k++) rot[a][b] += cell[k][a] * ltinv[k][b];
    }
}

/* ----------------------------------------------------------------------
   the simulation box must be the file's cell: the same lattice, rotated into
   LAMMPS's orientation (any equivalent choice of tilt factors is accepted)
------------------------------------------------------------------------- */

void PairTaylor::check_box(bool at_init)
{
  if (!domain->xperiodic || !domain->yperiodic || !domain->zperiodic)
    error->all(FLERR, "Pair style taylor requires a box periodic in x, y and z (boundary p p p)");

  double l[3][3], linv[3][3];
  lammps_triangle(cell, l);
  invert3(l, linv);
  const double xy = domain->triclinic ? domain->xy : 0.0;
  const double xz = domain->triclinic ? domain->xz : 0.0;
  const double yz = domain->triclinic ? domain->yz : 0.0;
  const double box[3][3] = {
      {domain->xprd, 0.0, 0.0}, {xy, domain->yprd, 0.0}, {xz, yz, domain->zprd}};
  bool ok = true;
  for (int a = 0; a < 3 && ok; a++)
    for (int b = 0; b < 3; b++) {
      double m = 0.0;    // box = m * l with m an integer unimodular matrix
      for (int k = 0; k < 3; k++) m += box[a][k] * linv[k][b];
      const double target = (a == b) ? 1.0 : std::nearbyint(m);
      if (std::fabs(m - target) > BOX_TOL) ok = false;
    }
  if (!ok)
    error->all(FLERR,
               "Pair style taylor: the simulation box (xprd yprd zprd = {:.10g} {:.10g} {:.10g}, "
               "xy xz yz = {:.10g} {:.10g} {:.10g}) is not the cell of Taylor file {} (expected "
               "{:.10g} {:.10g} {:.10g}, {:.10g} {:.10g} {:.10g} up to lattice-equivalent "
               "tilts){}",
               domain->xprd, domain->yprd, domain->zprd, xy, xz, yz, filename, l[0][0], l[1][1],
               l[2][2], l[1][0], l[2][0], l[2][1],
               at_init ? "" : "; the Taylor model is defined for a fixed cell only");
  const double now[6] = {domain->xprd, domain->yprd, domain->zprd, xy, xz, yz};
  std::memcpy(boxref, now, sizeof(now));
}

/* ----------------------------------------------------------------------
   every atom ID 1..N must be present and carry the file's element
------------------------------------------------------------------------- */

void PairTaylor::check_atoms()
{
  if (atom->natoms != (bigint) natoms_file)
    error->all(FLERR,
               "Pair style taylor: Taylor file {} describes {} atoms but the system has {}; the "
               "file must be written for this structure (atom ID i = atom i of the file)",
               filename, natoms_file, atom->natoms);

  // first offending atom on this rank: (ID, type), ID = MAXTAGINT when none
  tagint bad_tag = MAXTAGINT;
  int bad_type = 0;
  for (int i = 0; i < atom->nlocal; i++) {
    const tagint t = atom->tag[i];
    const int itype = atom->type[i];
    bool bad = (t < 1 || t > (tagint) natoms_file);
    if (!bad) bad = (type_element[itype] != atom_element[t - 1]);
    if (bad && t < bad_tag) {
      bad_tag = t;
      bad_type = itype;
    }
  }
  tagint first;
  MPI_Allreduce(&bad_tag, &first, 1, MPI_LMP_TAGINT, MPI_MIN, world);
  if (first == MAXTAGINT) return;
  int mine = (bad_tag == first) ? bad_type : 0, itype;
  MPI_Allreduce(&mine, &itype, 1, MPI_INT, MPI_MAX, world);
  if (first < 1 || first > (tagint) natoms_file)
    error->all(FLERR, "Pair style taylor: atom ID {} is outside 1..{} of Taylor file {}", first,
               natoms_file, filename);
  error->all(FLERR,
             "Pair style taylor: atom ID {} has type {} = element {} (pair_coeff) but Taylor file "
             "{} gives element {} for atom {}; the file's atoms must be the structure's atoms in "
             "the same order",
             first, itype, type_args[itype], filename,
             file_elements[atom_element[first - 1]], first);
}

/* ---------------------------------------------------------------------- */

void PairTaylor::init_style()
{
  check_init();
  check_atoms();
  check_box(true);
  // The energy is a polynomial in all displacements, gathered by atom ID in compute():
  // no neighbor list and no ghost atom is used. An occasional list (never built
  // unless asked for) with a nominal cutoff keeps LAMMPS's neighbor and
  // communication setup in its normal state (a pair style without any request and
  // cutoff gets a zero communication cutoff and a misleading warning).
  neighbor->add_request(this, NeighConst::REQ_OCCASIONAL);
}

/* ---------------------------------------------------------------------- */

double PairTaylor::init_one(int /*i*/, int /*j*/)
{
  // nominal: a zero cutoff would leave LAMMPS with a zero communication cutoff
  // (and a warning that forces may be wrong); the Taylor energy has no cutoff
  return NOMINAL_CUTOFF;
}

/* ---------------------------------------------------------------------- */

void PairTaylor::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  {
    const double xy = domain->triclinic ? domain->xy : 0.0;
    const double xz = domain->triclinic ? domain->xz : 0.0;
    const double yz = domain->triclinic ? domain->yz : 0.0;
    const double now[6] = {domain->xprd, domain->yprd, domain->zprd, xy, xz, yz};
    for (int k = 0; k < 6; k++)
      if (now[k] != boxref[k]) {
        check_box(false);
        break;
      }
  }

  double **x = atom->x;
  double **f = atom->f;
  const tagint *tag = atom->tag;
  const int nlocal = atom->nlocal;
  const int n3 = 3 * natoms_file;
  const int nprocs = comm->nprocs;

  // displacements of the owned atoms, file frame, nearest lattice image
  std::fill(u.begin(), u.end(), 0.0);
  for (int i = 0; i < nlocal; i++) {
    const int t = (int) (tag[i] - 1);
    double d[3], s[3];
    for (int a = 0; a < 3; a++)
      d[a] = rot[a][0] * x[i][0] + rot[a][1] * x[i][1] + rot[a][2] * x[i][2] - xref[3 * t + a];
    for (int b = 0; b < 3; b++) {
      s[b] = d[0] * cellinv[0][b] + d[1] * cellinv[1][b] + d[2] * cellinv[2][b];
      s[b] -= std::nearbyint(s[b]);
    }
    for (int a = 0; a < 3; a++)
      u[3 * t + a] = s[0] * cell[0][a] + s[1] * cell[1][a] + s[2] * cell[2][a];
  }
  if (nprocs > 1) MPI_Allreduce(MPI_IN_PLACE, u.data(), n3, MPI_DOUBLE, MPI_SUM, world);

  // this rank's share of the terms: energy and gradient dE/du
  std::fill(grad.begin(), grad.end(), 0.0);
  if (eflag_atom) eatom_all.assign(natoms_file, 0.0);
  double energy = 0.0;
  const int me = comm->me;
  for (const auto &ord : orders) {
    const int n = ord.n;
    const bigint nk = ord.nterms;
    if (nk == 0) continue;
    // this rank's share of the (translation g, term k) pairs, w = g * nk + k
    const bigint w0 = nk * ntrans * me / nprocs;
    const bigint w1 = nk * ntrans * (me + 1) / nprocs;
    double prefix[anharmbench::TAYLOR_MAX_ORDER + 1];
    for (bigint g = w0 / nk; g < ntrans && g * nk < w1; g++) {
      // the terms see the displacements through translation g: ug[q] = u[P_g(q)], and
      // their gradient gg goes back to grad[P_g(q)] (P_g is a permutation)
      const int *map = trans3.data() + (size_t) g * n3;
      for (int q = 0; q < n3; q++) ug[q] = u[map[q]];
      std::fill(gg.begin(), gg.end(), 0.0);
      const bigint k0 = (w0 > g * nk) ? w0 - g * nk : 0;
      const bigint k1 = (w1 - g * nk < nk) ? w1 - g * nk : nk;
      const int *idx = ord.index.data() + (size_t) k0 * n;
      for (bigint k = k0; k < k1; k++, idx += n) {
        const double c = ord.coeff[k];
        prefix[0] = 1.0;
        for (int j = 0; j < n; j++) prefix[j + 1] = prefix[j] * ug[idx[j]];
        const double eterm = c * prefix[n];
        energy += eterm;
        // d/du[idx[j]] of c * prod = c * prefix[j] * suffix[j+1]
        double suffix = c;
        for (int j = n - 1; j >= 0; j--) {
          gg[idx[j]] += suffix * prefix[j];
          suffix *= ug[idx[j]];
        }
        if (eflag_atom) {
          const double share = eterm / n;
          for (int j = 0; j < n; j++) eatom_all[map[idx[j]] / 3] += share;
        }
      }
      for (int q = 0; q < n3; q++) grad[map[q]] += gg[q];
    }
  }
  if (nprocs > 1) {
    MPI_Allreduce(MPI_IN_PLACE, grad.data(), n3, MPI_DOUBLE, MPI_SUM, world);
    if (eflag_atom)
      MPI_Allreduce(MPI_IN_PLACE, eatom_all.data(), natoms_file, MPI_DOUBLE, MPI_SUM, world);
  }

  // forces (rotated back into LAMMPS's frame) and the displacement virial
  for (int i = 0; i < nlocal; i++) {
    const int t = (int) (tag[i] - 1);
    const double *g = &grad[3 * t];
    const double *uf = &u[3 * t];
    double fl[3], ul[3];
    for (int a = 0; a < 3; a++) {
      fl[a] = -(rot[0][a] * g[0] + rot[1][a] * g[1] + rot[2][a] * g[2]);
      ul[a] = rot[0][a] * uf[0] + rot[1][a] * uf[1] + rot[2][a] * uf[2];
      f[i][a] += fl[a];
    }
    if (eflag_atom) eatom[i] += eatom_all[t];
    if (vflag_either) {
      const double v[6] = {ul[0] * fl[0],
                           ul[1] * fl[1],
                           ul[2] * fl[2],
                           0.5 * (ul[0] * fl[1] + ul[1] * fl[0]),
                           0.5 * (ul[0] * fl[2] + ul[2] * fl[0]),
                           0.5 * (ul[1] * fl[2] + ul[2] * fl[1])};
      if (vflag_global)
        for (int k = 0; k < 6; k++) virial[k] += v[k];
      if (vflag_atom)
        for (int k = 0; k < 6; k++) vatom[i][k] += v[k];
    }
  }
  if (eflag_global) eng_vdwl += energy;
}

/* ---------------------------------------------------------------------- */

double PairTaylor::memory_usage()
{
  double bytes = Pair::memory_usage();
  for (const auto &ord : orders)
    bytes += (double) ord.index.size() * sizeof(int) + (double) ord.coeff.size() * sizeof(double);
  bytes += (double) (xref.size() + u.size() + grad.size() + ug.size() + gg.size() +
                     eatom_all.size()) * sizeof(double);
  bytes += (double) trans3.size() * sizeof(int);
  return bytes;
}
