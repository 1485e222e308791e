/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: the metadata of a .pt2 package for pair style nequip, checked
   and parsed (the contract is at the top of pair_nequip.cpp), and whether the
   package's compiled library can run on this machine. No libtorch here: the
   pair style reads the metadata from the package and passes it in.
------------------------------------------------------------------------- */

#ifndef ANHARMBENCH_NEQUIP_METADATA_H
#define ANHARMBENCH_NEQUIP_METADATA_H

#include <map>
#include <string>
#include <vector>

namespace anharmbench {

// the package's "aot_inductor.metadata" dict
using Metadata = std::map<std::string, std::string>;

// What pair style nequip takes from a package's metadata.
struct NequipModelInfo {
  std::vector<std::string> input_names;    // "nequip_aoti_inputs" (call order)
  std::vector<std::string> output_names;   // "nequip_aoti_outputs" (result order)
  double r_max = 0.0;                      // global cutoff, Angstrom
  std::vector<std::string> type_names;     // "type_names"
  std::vector<double> type_cutoff;         // ntypes^2 (centre, neighbour), Angstrom, or empty
  std::string dtype;                       // "model_dtype": "float32" or "float64"
};

// Check `meta` of package `file` against the contract and fill `out`. Returns the
// error message (naming the file, the key and the fix), empty when it fits.
std::string parse_nequip_metadata(const std::string &file, const Metadata &meta,
                                  NequipModelInfo &out);

// Can the package's library run here (device, platform, machine, the CPU's vector
// instruction sets, the torch version of this plugin)? The first reason it cannot,
// empty if it can. Depends on the node: call it on every rank.
std::string aoti_runs_here(const std::string &file, const Metadata &meta,
                           const std::string &torch_version);

}    // namespace anharmbench

#endif
