/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: the Taylor file of pair style taylor, read and checked on one
   rank (format: plugins/README.md; writer: anharmbench/potentials/taylor_file.py),
   and the cell geometry the reader and the pair style share.
------------------------------------------------------------------------- */

#ifndef ANHARMBENCH_TAYLOR_FILE_H
#define ANHARMBENCH_TAYLOR_FILE_H

#include <cstdint>
#include <string>
#include <vector>

namespace anharmbench {

// highest order (factors per term) a file may hold
constexpr int TAYLOR_MAX_ORDER = 16;
// bytes of an element name in the file (NUL-padded)
constexpr int TAYLOR_NAME_LEN = 8;

// The terms of one order: c_k * prod_{j<n} u[index[k*n + j]].
struct TaylorOrder {
  int n = 0;                       // order (number of factors per term)
  int64_t nterms = 0;              // number of terms
  std::vector<int> index;          // nterms*n flat indices 3*atom + cart
  std::vector<double> coeff;       // nterms coefficients, eV/Angstrom^n
};

// Everything a Taylor file holds.
struct TaylorFile {
  std::vector<std::string> elements;   // distinct element names
  std::vector<int> atom_element;       // natoms indices into elements
  double cell[3][3] = {{0.0}};         // rows = lattice vectors, Angstrom
  std::vector<double> xref;            // 3*natoms reference positions, Angstrom
  std::vector<uint32_t> translations;  // ntrans*natoms: atom i goes to table[g*natoms + i]
  std::vector<TaylorOrder> orders;     // increasing n

  int natoms() const { return (int) atom_element.size(); }
  int ntrans() const
  {
    return atom_element.empty() ? 1 : (int) (translations.size() / atom_element.size());
  }
};

// Read `path` into `out` and check it: sizes against the header before any
// allocation, indices, finite numbers, the end marker, a non-degenerate cell and
// a translation table whose rows are lattice translations. Returns the error
// message (naming the file and the fault), empty when the file is fine.
std::string read_taylor_file(const std::string &path, TaylorFile &out);

// Inverse of a 3x3 matrix; returns the determinant (0 when singular, inv untouched).
double invert3(const double a[3][3], double inv[3][3]);

// LAMMPS's lower-triangular form of a cell given by rows a, b, c:
// rows (ax,0,0), (bx,by,0), (cx,cy,cz) with ax, by, cz > 0.
void lammps_triangle(const double h[3][3], double l[3][3]);

}    // namespace anharmbench

#endif
