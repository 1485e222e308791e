/* ----------------------------------------------------------------------
   anharmbench: reading and checking a Taylor file (taylor_file.h)

   Layout (little-endian; plugins/README.md has the full table):
     "ABTAYLOR", version, natoms, nelements, norders, [ntrans, reserved (v2)],
     element names (8 bytes each), element of each atom, cell (9 doubles),
     reference positions (3N doubles), [translation table (ntrans*N, v2)],
     order table (n, reserved, nterms) per order, then per order the term
     indices (nterms*n uint32) and coefficients (nterms doubles), "ENDTAYLR".
------------------------------------------------------------------------- */

#include "taylor_file.h"

#include "lmptype.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

using namespace LAMMPS_NS;

namespace anharmbench {
namespace {

constexpr char MAGIC[8] = {'A', 'B', 'T', 'A', 'Y', 'L', 'O', 'R'};
constexpr char END_MARKER[8] = {'E', 'N', 'D', 'T', 'A', 'Y', 'L', 'R'};
constexpr uint32_t FORMAT_VERSION = 2;    // version 1 (no translation table) is read too
// fractional tolerance for "a translation moves every atom by the same vector"
constexpr double TRANSLATION_TOL = 1.0e-6;

// Every row of the table must permute the atoms, keep each atom's element and
// move all atoms by one vector (a lattice translation); returns the error message.
std::string check_translations(const std::string &file, const TaylorFile &t,
                               const double cellinv[3][3])
{
  const size_t nat = (size_t) t.natoms();
  const size_t ntr = t.translations.size() / nat;
  std::vector<char> seen(nat);
  for (size_t g = 0; g < ntr; g++) {
    const uint32_t *row = &t.translations[g * nat];
    std::fill(seen.begin(), seen.end(), 0);
    double shift[3] = {0.0, 0.0, 0.0};
    for (size_t i = 0; i < nat; i++) {
      const uint32_t j = row[i];
      if (j >= nat || seen[j])
        return fmt::format("Taylor file {}: row {} of the translation table is not a "
                           "permutation of the atoms",
                           file, g);
      seen[j] = 1;
      if (t.atom_element[j] != t.atom_element[i])
        return fmt::format("Taylor file {}: translation {} moves atom {} onto atom {} of another "
                           "element",
                           file, g, i + 1, j + 1);
      double d[3], s[3];
      for (int a = 0; a < 3; a++) d[a] = t.xref[3 * j + a] - t.xref[3 * i + a];
      for (int b = 0; b < 3; b++) {
        s[b] = d[0] * cellinv[0][b] + d[1] * cellinv[1][b] + d[2] * cellinv[2][b];
        if (i == 0) shift[b] = s[b];
        const double dev = s[b] - shift[b];
        if (std::fabs(dev - std::nearbyint(dev)) > TRANSLATION_TOL)
          return fmt::format("Taylor file {}: translation {} does not move every atom by the "
                             "same lattice vector (atom {})",
                             file, g, i + 1);
      }
    }
  }
  return "";
}

// Sequential reads that stop at the first fault and remember it.
class Reader {
 public:
  Reader(FILE *fp, const std::string &file, std::string &err) : fp_(fp), file_(file), err_(err) {}
  bool get(void *dst, size_t size, size_t count, const char *what)
  {
    if (!err_.empty()) return false;
    if (count == 0) return true;
    if (fread(dst, size, count, fp_) != count) {
      err_ = fmt::format("Taylor file {} is truncated while reading {} (offset {})", file_, what,
                         pos_);
      return false;
    }
    pos_ += (long) (size * count);
    return true;
  }
  long pos() const { return pos_; }

 private:
  FILE *fp_;
  const std::string &file_;
  std::string &err_;
  long pos_ = 0;
};

std::string read_open_file(FILE *fp, const std::string &file, TaylorFile &out)
{
  std::string err;
  fseek(fp, 0, SEEK_END);
  const long fsize = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  Reader in(fp, file, err);

  uint32_t head[5] = {0, 0, 0, 0, 1};    // version, natoms, nelements, norders, ntrans
  char magic[8];
  if (in.get(magic, 1, 8, "the magic number") && std::memcmp(magic, MAGIC, 8) != 0)
    return fmt::format("{} is not a Taylor file of anharmbench (bad magic number)", file);
  if (in.get(head, 4, 4, "the header") && head[0] != 1 && head[0] != FORMAT_VERSION)
    return fmt::format("Taylor file {} has format version {}, this pair style reads 1 and {}",
                       file, head[0], FORMAT_VERSION);
  uint32_t extra[2] = {1, 0};    // version 2: number of translations, reserved
  if (err.empty() && head[0] >= 2 && in.get(extra, 4, 2, "the header")) head[4] = extra[0];
  if (!err.empty()) return err;
  if (head[1] == 0 || head[1] > (uint32_t) (MAXSMALLINT / 3))
    return fmt::format("Taylor file {} declares an invalid atom count {}", file, head[1]);
  if (head[2] == 0 || head[2] > head[1])
    return fmt::format("Taylor file {} declares an invalid element count {}", file, head[2]);
  if (head[3] > 64)
    return fmt::format("Taylor file {} declares an invalid number of orders {}", file, head[3]);
  if (head[4] == 0 || head[4] > head[1])
    return fmt::format("Taylor file {} declares an invalid number of translations {}", file,
                       head[4]);
  const uint32_t nat = head[1], nel = head[2], nord = head[3], ntr = head[4];
  const bool has_table = head[0] >= 2;

  // the fixed-size part is known now: refuse before allocating from a corrupt header
  const long fixed = 8 + 16 + (has_table ? 8 : 0) + (long) nel * TAYLOR_NAME_LEN + 4L * nat + 72 +
      24L * nat + (has_table ? 4L * ntr * nat : 0) + 16L * nord;
  if (fsize < fixed + 8)
    return fmt::format("Taylor file {} is truncated: {} bytes, its header needs at least {}",
                       file, fsize, fixed + 8);

  std::vector<char> names((size_t) nel * TAYLOR_NAME_LEN);
  std::vector<uint32_t> elem32(nat);
  double cellbuf[9] = {0.0};
  out.xref.resize(3 * (size_t) nat);
  out.translations.resize((size_t) ntr * nat);
  in.get(names.data(), 1, names.size(), "the element names");
  in.get(elem32.data(), 4, elem32.size(), "the element of each atom");
  in.get(cellbuf, 8, 9, "the cell");
  in.get(out.xref.data(), 8, out.xref.size(), "the reference positions");
  if (has_table)
    in.get(out.translations.data(), 4, out.translations.size(), "the translation table");
  else
    for (uint32_t i = 0; i < nat; i++) out.translations[i] = i;    // version 1: the identity
  if (!err.empty()) return err;

  std::vector<uint32_t> order_n(nord);
  std::vector<uint64_t> order_k(nord);
  long expected = in.pos() + 16L * nord + 8;
  for (uint32_t m = 0; m < nord; m++) {
    uint32_t nk[2];
    uint64_t count;
    if (!in.get(nk, 4, 2, "the order table") || !in.get(&count, 8, 1, "the order table"))
      return err;
    order_n[m] = nk[0];
    order_k[m] = count;
    if (nk[0] < 1 || nk[0] > (uint32_t) TAYLOR_MAX_ORDER)
      return fmt::format("Taylor file {}: order {} is outside 1..{}", file, nk[0],
                         TAYLOR_MAX_ORDER);
    if (m > 0 && nk[0] <= order_n[m - 1])
      return fmt::format("Taylor file {}: orders must be listed in increasing order", file);
    if (count > (uint64_t) (fsize / 8))
      return fmt::format("Taylor file {}: order {} declares {} terms, more than the file holds",
                         file, nk[0], count);
    expected += (long) count * (4L * nk[0] + 8L);
  }
  if (expected != fsize)
    return fmt::format("Taylor file {} has {} bytes but its header describes {} bytes: the file "
                       "is truncated or corrupt",
                       file, fsize, expected);

  std::vector<uint32_t> idx32;
  out.orders.clear();
  for (uint32_t m = 0; m < nord; m++) {
    TaylorOrder ord;
    ord.n = (int) order_n[m];
    ord.nterms = (int64_t) order_k[m];
    idx32.resize((size_t) ord.nterms * ord.n);
    ord.coeff.resize((size_t) ord.nterms);
    if (!in.get(idx32.data(), 4, idx32.size(), "term indices")) return err;
    if (!in.get(ord.coeff.data(), 8, ord.coeff.size(), "term coefficients")) return err;
    ord.index.resize(idx32.size());
    for (size_t q = 0; q < idx32.size(); q++) {
      if (idx32[q] >= 3 * nat)
        return fmt::format("Taylor file {}: order {} term {} uses index {} >= 3*natoms = {}",
                           file, ord.n, q / ord.n, idx32[q], 3 * nat);
      ord.index[q] = (int) idx32[q];
    }
    for (size_t k = 0; k < ord.coeff.size(); k++)
      if (!std::isfinite(ord.coeff[k]))
        return fmt::format("Taylor file {}: order {} term {} has a non-finite coefficient", file,
                           ord.n, k);
    out.orders.push_back(std::move(ord));
  }
  char end[8];
  if (in.get(end, 1, 8, "the end marker") && std::memcmp(end, END_MARKER, 8) != 0)
    return fmt::format("Taylor file {} does not end with its end marker: corrupt file", file);
  if (!err.empty()) return err;

  for (uint32_t i = 0; i < nat; i++)
    if (elem32[i] >= nel)
      return fmt::format("Taylor file {}: atom {} has element index {} >= {}", file, i + 1,
                         elem32[i], nel);
  for (double x : out.xref)
    if (!std::isfinite(x))
      return fmt::format("Taylor file {}: non-finite reference position", file);
  out.elements.clear();
  for (uint32_t e = 0; e < nel; e++) {
    const char *p = &names[(size_t) e * TAYLOR_NAME_LEN];
    out.elements.emplace_back(p, strnlen(p, TAYLOR_NAME_LEN));
  }
  out.atom_element.assign(elem32.begin(), elem32.end());
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) out.cell[a][b] = cellbuf[3 * a + b];
  double cellinv[3][3];
  if (!(std::fabs(invert3(out.cell, cellinv)) > 1.0e-8))
    return fmt::format("Taylor file {}: the cell is degenerate", file);
  return check_translations(file, out, cellinv);
}

}    // namespace

std::string read_taylor_file(const std::string &path, TaylorFile &out)
{
  out = TaylorFile();
  FILE *fp = fopen(path.c_str(), "rb");
  if (fp == nullptr)
    return fmt::format("Cannot open Taylor file {}: {}", path, utils::getsyserror());
  std::string err = read_open_file(fp, path, out);
  fclose(fp);
  if (!err.empty()) out = TaylorFile();
  return err;
}

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

void lammps_triangle(const double h[3][3], double l[3][3])
{
  auto dot = [](const double *p, const double *q) {
    return p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
  };
  const double ax = std::sqrt(dot(h[0], h[0]));
  const double bx = dot(h[0], h[1]) / ax;
  const double by = std::sqrt(dot(h[1], h[1]) - bx * bx);
  const double cx = dot(h[0], h[2]) / ax;
  const double cy = (dot(h[1], h[2]) - bx * cx) / by;
  const double cz = std::sqrt(dot(h[2], h[2]) - cx * cx - cy * cy);
  const double rows[3][3] = {{ax, 0.0, 0.0}, {bx, by, 0.0}, {cx, cy, cz}};
  std::memcpy(l, rows, sizeof(rows));
}

}    // namespace anharmbench
