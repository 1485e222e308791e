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
   MPI_Allreduce, and each rank applies it to the atoms it owns. The pair style needs no neighbor list and
   ghost atoms (init_style requests only an occasional list that is never built).
------------------------------------------------------------------------- */

#include "pair_taylor.h"

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

namespace {

constexpr char MAGIC[8] = {'A', 'B', 'T', 'A', 'Y', 'L', 'O', 'R'};
constexpr char END_MARKER[8] = {'E', 'N', 'D', 'T', 'A', 'Y', 'L', 'R'};
constexpr uint32_t FORMAT_VERSION = 2;    // version 1 (no translation table) is read too
constexpr int MAX_ORDER = 16;
constexpr int NAME_LEN = 8;
// fractional tolerance for "a translation moves every atom by the same vector"
constexpr double TRANSLATION_TOL = 1.0e-6;
// relative tolerance for "the box is the file's cell" and "the tilt is an integer"
constexpr double BOX_TOL = 1.0e-6;
// pair cutoff reported to LAMMPS (Angstrom); only sizes the ghost-atom shell
constexpr double NOMINAL_CUTOFF = 0.1;

// invert a 3x3 matrix; returns the determinant (0 when singular)
double invert3(const double a[3][3], double inv[3][3])
{
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
      a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
      a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (det == 0.0) return 0.0;
  inv[0][0] = (a[1][1] * a[2][2] - a[1][2] * a[2][1]) / det;
  inv[0][1] = (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det;
  inv[0][2] = (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det;
  inv[1][0] = (a[1][2] * a[2][0] - a[1][0] * a[2][2]) / det;
  inv[1][1] = (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det;
  inv[1][2] = (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det;
  inv[2][0] = (a[1][0] * a[2][1] - a[1][1] * a[2][0]) / det;
  inv[2][1] = (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det;
  inv[2][2] = (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det;
  return det;
}

// LAMMPS's lower-triangular form of a cell given by rows a, b, c:
// rows (ax,0,0), (bx,by,0), (cx,cy,cz) with ax, by, cz > 0
void lammps_triangle(const double h[3][3], double l[3][3])
{
  auto dot = [](const double *p, const double *q) { return p[0] * q[0] + p[1] * q[1] + p[2] * q[2]; };
  const double ax = std::sqrt(dot(h[0], h[0]));
  const double bx = dot(h[0], h[1]) / ax;
  const double by = std::sqrt(dot(h[1], h[1]) - bx * bx);
  const double cx = dot(h[0], h[2]) / ax;
  const double cy = (dot(h[1], h[2]) - bx * cx) / by;
  const double cz = std::sqrt(dot(h[2], h[2]) - cx * cx - cy * cy);
  const double rows[3][3] = {{ax, 0.0, 0.0}, {bx, by, 0.0}, {cx, cy, cz}};
  std::memcpy(l, rows, sizeof(rows));
}

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
   read a Taylor file on rank 0 and broadcast it (format: plugins/README.md)
------------------------------------------------------------------------- */

void PairTaylor::read_file(const char *file)
{
  filename = file;
  std::string err;
  uint32_t head[5] = {0, 0, 0, 0, 1};    // version, natoms, nelements, norders, ntrans
  std::vector<char> names;
  std::vector<uint32_t> order_n;
  std::vector<uint64_t> order_k;
  std::vector<uint32_t> elem32;
  std::vector<uint32_t> table32;
  double cellbuf[9] = {0.0};

  orders.clear();
  if (comm->me == 0) {
    FILE *fp = fopen(file, "rb");
    if (fp == nullptr) {
      err = fmt::format("Cannot open Taylor file {}: {}", file, utils::getsyserror());
    } else {
      fseek(fp, 0, SEEK_END);
      const long fsize = ftell(fp);
      fseek(fp, 0, SEEK_SET);
      long pos = 0;
      auto get = [&](void *dst, size_t size, size_t count, const char *what) -> bool {
        if (!err.empty()) return false;
        if (count == 0) return true;
        if (fread(dst, size, count, fp) != count) {
          err = fmt::format("Taylor file {} is truncated while reading {} (offset {})", file,
                            what, pos);
          return false;
        }
        pos += (long) (size * count);
        return true;
      };
      char magic[8];
      if (get(magic, 1, 8, "the magic number") && std::memcmp(magic, MAGIC, 8) != 0)
        err = fmt::format("{} is not a Taylor file of anharmbench (bad magic number)", file);
      if (get(head, 4, 4, "the header") && head[0] != 1 && head[0] != FORMAT_VERSION)
        err = fmt::format("Taylor file {} has format version {}, this pair style reads 1 and {}",
                          file, head[0], FORMAT_VERSION);
      uint32_t extra[2] = {1, 0};    // version 2: number of translations, reserved
      if (err.empty() && head[0] >= 2 && get(extra, 4, 2, "the header")) head[4] = extra[0];
      if (err.empty()) {
        if (head[1] == 0 || head[1] > (uint32_t) (MAXSMALLINT / 3))
          err = fmt::format("Taylor file {} declares an invalid atom count {}", file, head[1]);
        else if (head[2] == 0 || head[2] > head[1])
          err = fmt::format("Taylor file {} declares an invalid element count {}", file, head[2]);
        else if (head[3] > 64)
          err = fmt::format("Taylor file {} declares an invalid number of orders {}", file,
                            head[3]);
        else if (head[4] == 0 || head[4] > head[1])
          err = fmt::format("Taylor file {} declares an invalid number of translations {}", file,
                            head[4]);
      }
      const uint32_t nat = head[1], nel = head[2], nord = head[3], ntr = head[4];
      const bool has_table = head[0] >= 2;
      if (err.empty()) {
        // fixed-size part is known now: refuse before allocating from a corrupt header
        const long fixed = 8 + 16 + (has_table ? 8 : 0) + (long) nel * NAME_LEN + 4L * nat + 72 +
            24L * nat + (has_table ? 4L * ntr * nat : 0) + 16L * nord;
        if (fsize < fixed + 8)
          err = fmt::format("Taylor file {} is truncated: {} bytes, its header needs at least {}",
                            file, fsize, fixed + 8);
      }
      if (err.empty()) {
        names.resize((size_t) nel * NAME_LEN);
        elem32.resize(nat);
        xref.resize(3 * (size_t) nat);
        table32.resize((size_t) ntr * nat);
      }
      get(names.data(), 1, names.size(), "the element names");
      get(elem32.data(), 4, elem32.size(), "the element of each atom");
      get(cellbuf, 8, 9, "the cell");
      get(xref.data(), 8, xref.size(), "the reference positions");
      if (has_table)
        get(table32.data(), 4, table32.size(), "the translation table");
      else if (err.empty())
        for (uint32_t i = 0; i < nat; i++) table32[i] = i;    // version 1: the identity
      if (err.empty()) {
        order_n.resize(nord);
        order_k.resize(nord);
      }
      long expected = pos + 16L * nord + 8;
      for (uint32_t m = 0; m < nord && err.empty(); m++) {
        uint32_t nk[2];
        uint64_t count;
        if (!get(nk, 4, 2, "the order table") || !get(&count, 8, 1, "the order table")) break;
        order_n[m] = nk[0];
        order_k[m] = count;
        if (nk[0] < 1 || nk[0] > (uint32_t) MAX_ORDER)
          err = fmt::format("Taylor file {}: order {} is outside 1..{}", file, nk[0], MAX_ORDER);
        else if (m > 0 && nk[0] <= order_n[m - 1])
          err = fmt::format("Taylor file {}: orders must be listed in increasing order", file);
        else if (count > (uint64_t) (fsize / 8))
          err = fmt::format("Taylor file {}: order {} declares {} terms, more than the file holds",
                            file, nk[0], count);
        else
          expected += (long) count * (4L * nk[0] + 8L);
      }
      if (err.empty() && expected != fsize)
        err = fmt::format("Taylor file {} has {} bytes but its header describes {} bytes: the file "
                          "is truncated or corrupt",
                          file, fsize, expected);
      std::vector<uint32_t> idx32;
      for (uint32_t m = 0; m < nord && err.empty(); m++) {
        Order ord;
        ord.n = (int) order_n[m];
        ord.nterms = (bigint) order_k[m];
        idx32.resize((size_t) ord.nterms * ord.n);
        ord.coeff.resize((size_t) ord.nterms);
        if (!get(idx32.data(), 4, idx32.size(), "term indices")) break;
        if (!get(ord.coeff.data(), 8, ord.coeff.size(), "term coefficients")) break;
        ord.index.resize(idx32.size());
        for (size_t q = 0; q < idx32.size(); q++) {
          if (idx32[q] >= 3 * nat) {
            err = fmt::format("Taylor file {}: order {} term {} uses index {} >= 3*natoms = {}",
                              file, ord.n, q / ord.n, idx32[q], 3 * nat);
            break;
          }
          ord.index[q] = (int) idx32[q];
        }
        for (size_t k = 0; k < ord.coeff.size() && err.empty(); k++)
          if (!std::isfinite(ord.coeff[k]))
            err = fmt::format("Taylor file {}: order {} term {} has a non-finite coefficient",
                              file, ord.n, k);
        orders.push_back(std::move(ord));
      }
      char end[8];
      if (get(end, 1, 8, "the end marker") && std::memcmp(end, END_MARKER, 8) != 0)
        err = fmt::format("Taylor file {} does not end with its end marker: corrupt file", file);
      for (uint32_t i = 0; i < nat && err.empty(); i++)
        if (elem32[i] >= nel)
          err = fmt::format("Taylor file {}: atom {} has element index {} >= {}", file, i + 1,
                            elem32[i], nel);
      for (size_t q = 0; q < xref.size() && err.empty(); q++)
        if (!std::isfinite(xref[q]))
          err = fmt::format("Taylor file {}: non-finite reference position", file);
      if (err.empty()) {
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) cell[a][b] = cellbuf[3 * a + b];
        natoms_file = (int) nat;
        atom_element.assign(elem32.begin(), elem32.end());
        if (!(std::fabs(invert3(cell, cellinv)) > 1.0e-8))
          err = fmt::format("Taylor file {}: the cell is degenerate", file);
        else
          err = check_translations(table32);
      }
      fclose(fp);
    }
  }

  // share the outcome: every rank stops with the same message
  agree_on_error(FLERR, err);

  MPI_Bcast(head, 5, MPI_UINT32_T, 0, world);
  const int nat = (int) head[1], nel = (int) head[2], nord = (int) head[3];
  ntrans = (int) head[4];
  natoms_file = nat;
  names.resize((size_t) nel * NAME_LEN);
  elem32.resize(nat);
  xref.resize(3 * (size_t) nat);
  table32.resize((size_t) ntrans * nat);
  MPI_Bcast(names.data(), nel * NAME_LEN, MPI_CHAR, 0, world);
  MPI_Bcast(elem32.data(), nat, MPI_UINT32_T, 0, world);
  MPI_Bcast(cellbuf, 9, MPI_DOUBLE, 0, world);
  bcast_array(xref.data(), 3 * (bigint) nat, MPI_DOUBLE, world);
  bcast_array(table32.data(), (bigint) ntrans * nat, MPI_UINT32_T, world);
  trans3.resize((size_t) ntrans * 3 * nat);
  for (size_t g = 0; g < (size_t) ntrans; g++)
    for (size_t i = 0; i < (size_t) nat; i++)
      for (int a = 0; a < 3; a++)
        trans3[(g * nat + i) * 3 + a] = 3 * (int) table32[g * nat + i] + a;

  file_elements.clear();
  for (int e = 0; e < nel; e++) {
    const char *p = &names[(size_t) e * NAME_LEN];
    file_elements.emplace_back(p, strnlen(p, NAME_LEN));
  }
  atom_element.assign(elem32.begin(), elem32.end());
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) cell[a][b] = cellbuf[3 * a + b];

  if (comm->me != 0) orders.resize(nord);
  for (int m = 0; m < nord; m++) {
    Order &ord = orders[m];
    bigint nk[2] = {ord.n, ord.nterms};
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
   every row of the translation table must permute the atoms, keep each atom's
   element and move all atoms by one vector (a lattice translation); returns
   the error message, empty when the table is fine (rank 0, before the bcast)
------------------------------------------------------------------------- */

std::string PairTaylor::check_translations(const std::vector<uint32_t> &table) const
{
  const size_t nat = (size_t) natoms_file;
  const size_t ntr = table.size() / nat;
  std::vector<char> seen(nat);
  for (size_t g = 0; g < ntr; g++) {
    const uint32_t *row = &table[g * nat];
    std::fill(seen.begin(), seen.end(), 0);
    double shift[3] = {0.0, 0.0, 0.0};
    for (size_t i = 0; i < nat; i++) {
      const uint32_t j = row[i];
      if (j >= nat || seen[j])
        return fmt::format("Taylor file {}: row {} of the translation table is not a "
                           "permutation of the atoms",
                           filename, g);
      seen[j] = 1;
      if (atom_element[j] != atom_element[i])
        return fmt::format("Taylor file {}: translation {} moves atom {} onto atom {} of another "
                           "element",
                           filename, g, i + 1, j + 1);
      double d[3], s[3];
      for (int a = 0; a < 3; a++) d[a] = xref[3 * j + a] - xref[3 * i + a];
      for (int b = 0; b < 3; b++) {
        s[b] = d[0] * cellinv[0][b] + d[1] * cellinv[1][b] + d[2] * cellinv[2][b];
        if (i == 0) shift[b] = s[b];
        const double dev = s[b] - shift[b];
        if (std::fabs(dev - std::nearbyint(dev)) > TRANSLATION_TOL)
          return fmt::format("Taylor file {}: translation {} does not move every atom by the "
                             "same lattice vector (atom {})",
                             filename, g, i + 1);
      }
    }
  }
  return "";
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
    double prefix[MAX_ORDER + 1];
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
