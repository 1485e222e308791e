/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: pair style nequip, a compiled (AOTInductor .pt2) graph neural
   network potential -- NequIP models compiled with
     nequip-compile CKPT model.nequip.pt2 --mode aotinductor --device cpu --target pair_nequip
   and any other model exported with the same inputs, outputs and metadata
   (the contract is documented at the top of pair_nequip.cpp).

   Usage (units metal, one MPI rank):
     pair_style nequip
     pair_coeff * * model.nequip.pt2 Name_1 ... Name_ntypes

   Name_k is the model type name (metadata "type_names") of LAMMPS atom type k.
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_NEQUIP_H
#define LMP_PAIR_NEQUIP_H

#include "pair_anharmbench_base.h"
#include "nequip_metadata.h"

#include <memory>
#include <string>
#include <vector>

namespace torch {
namespace inductor {
class AOTIModelPackageLoader;
}
}    // namespace torch

namespace LAMMPS_NS {

class PairNequIP : public PairAnharmbenchBase {
 public:
  PairNequIP(class LAMMPS *);
  ~PairNequIP() override;

  void compute(int, int) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double memory_usage() override;

 protected:
  std::string filename;                       // the .pt2 package
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> model;
  anharmbench::NequipModelInfo info;          // what the package's metadata says
  std::vector<int> type_mapper;                // LAMMPS type -> model type index

  // work arrays, reused between calls
  std::vector<int> tag2local;
  std::vector<long> edge_src, edge_dst;
  std::vector<double> edge_shift;

  void read_metadata(const char *);
  void load_model();
};

}    // namespace LAMMPS_NS

#endif
