/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: pair style quip, QUIP/GAP models evaluated through the LAMMPS
   interface exported by QUIP's libPotentials (quippy-ase wheel).

   Usage (units metal, newton pair on), the syntax of LAMMPS's ML-QUIP package:
     pair_style quip
     pair_coeff * * FILE.xml "IP GAP [label=...]" Z_1 ... Z_ntypes

   Z_k is the atomic number of atom type k. The model file is read by QUIP, which
   stops the whole process on any error; the plugin first checks everything about
   the file and the init string that QUIP would stop on and that can be checked
   (see pair_quip.cpp), and refuses types (and structures) the model does not
   describe. See plugins/quip/README.md.
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_QUIP_ANHARMBENCH_H
#define LMP_PAIR_QUIP_ANHARMBENCH_H

#include "pair_anharmbench_base.h"

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairQUIP : public PairAnharmbenchBase {
 public:
  PairQUIP(class LAMMPS *);
  ~PairQUIP() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double memory_usage() override;

 protected:
  std::string model_file;            // the xml file given to pair_coeff
  std::string init_string;           // QUIP init string, e.g. "IP GAP"
  std::string label;                 // label=... of the init string, empty if none
  long long file_size;               // size and modification time of the file when
  long long file_mtime;              //   pair_coeff read it (a reload must see the same)
  std::vector<std::string> sparse_files;    // sparseX files QUIP reads with the model
  std::vector<int> model_species;    // atomic numbers the model's descriptors cover
  std::vector<int> type_z;           // atom type -> atomic number (index 0 unused)
  double cutoff;                     // model cutoff returned by QUIP, Angstrom
  long instance_id;                  // which PairQUIP last handed its model to QUIP
  std::vector<int> quip_handle;      // QUIP's opaque potential handle (ints)

  // per-call work arrays, kept between calls
  std::vector<int> atomic_numbers, num_neigh, neigh, ilist_copy, tag_copy;
  std::vector<double> local_e, quip_force, local_virial;

  void parse_init_string();
  void inspect_model_file();
  void check_readable();
  void load_model();
  void check_file_unchanged();
  void check_species_present();
  void reset_wrapper_atoms();
};

}    // namespace LAMMPS_NS

#endif
