/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: pair style taylor, a Taylor-series (polynomial) Hamiltonian in
   the atomic displacements from a reference structure.

     E = sum_n sum_g sum_k c_nk * prod_{j=1..n} u[P_g(q_nkj)],    u[3*i + a] = x_ia - xref_ia

   where P_g (g = 1..G) are lattice translations of the cell given in the file as
   atom permutations (G = 1, the identity, for a file that lists every term; an
   expansion invariant under the translations stores one term per orbit)

   with atoms identified by LAMMPS atom ID (ID i+1 = atom i of the file) and
   u_i taken as the lattice image of x_i - xref_i nearest in fractional
   coordinates. The file format is documented in plugins/README.md and written
   by anharmbench.potentials.taylor_cartesian; taylor_file.h reads it.

   Usage (units metal):
     pair_style taylor
     pair_coeff * * FILE El_1 ... El_ntypes
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_TAYLOR_H
#define LMP_PAIR_TAYLOR_H

#include "pair_anharmbench_base.h"
#include "taylor_file.h"

#include <cstdint>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairTaylor : public PairAnharmbenchBase {
 public:
  PairTaylor(class LAMMPS *);

  void compute(int, int) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double memory_usage() override;

 protected:
  using Order = anharmbench::TaylorOrder;

  std::string filename;
  int natoms_file;                         // N
  std::vector<std::string> file_elements;  // distinct element names of the file
  std::vector<int> atom_element;           // N indices into file_elements
  double cell[3][3];                       // file cell, rows = lattice vectors
  double cellinv[3][3];                    // inverse of cell
  std::vector<double> xref;                // 3N reference positions, file frame
  int ntrans;                              // G, number of lattice translations
  std::vector<int> trans3;                 // G*3N: flat index q moved by translation g
  std::vector<Order> orders;
  std::vector<int> type_element;          // atom type -> index into file_elements, -1 if absent

  // file_vector = rot * lammps_vector (LAMMPS's box is the file cell rotated so
  // that a || x and b lies in the xy plane)
  double rot[3][3];
  double boxref[6];    // xprd, yprd, zprd, xy, xz, yz checked in init_style

  std::vector<double> u;        // 3N displacements, file frame
  std::vector<double> grad;     // 3N dE/du, file frame
  std::vector<double> ug;       // 3N displacements seen from one translation
  std::vector<double> gg;       // 3N gradient with respect to ug
  std::vector<double> eatom_all;    // N per-atom energies (only with eflag_atom)

  void read_file(const char *);
  void setup_rotation();
  void check_box(bool);
  void check_atoms();
};

}    // namespace LAMMPS_NS

#endif
