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

#include <map>
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
  std::map<std::string, std::string> metadata;
  double r_max;                                // global cutoff, Angstrom
  std::vector<std::string> model_type_names;   // metadata "type_names"
  std::vector<double> type_cutoff;             // ntypes_model^2 (center, neighbor), or empty
  std::string model_dtype;                     // "float32" or "float64"
  std::vector<std::string> input_names;        // metadata "nequip_aoti_inputs" (call order)
  std::vector<std::string> output_names;       // metadata "nequip_aoti_outputs" (result order)
  std::vector<int> type_mapper;                // LAMMPS type -> model type index

  // work arrays, reused between calls
  std::vector<int> tag2local;
  std::vector<long> edge_src, edge_dst;
  std::vector<double> edge_shift;

  void read_metadata(const char *);
  std::string runs_here() const;
  void load_model();
};

}    // namespace LAMMPS_NS

#endif
