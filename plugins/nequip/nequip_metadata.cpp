/* ----------------------------------------------------------------------
   anharmbench: checking the metadata of a pair_style nequip package
   (nequip_metadata.h)
------------------------------------------------------------------------- */

#include "nequip_metadata.h"

#include "lmptype.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <sys/utsname.h>

using namespace LAMMPS_NS;

namespace anharmbench {
namespace {

const char *const REQUIRED_INPUTS[] = {"pos", "edge_index", "atom_types", "cell",
                                       "edge_cell_shift"};
const char *const REQUIRED_OUTPUTS[] = {"atomic_energy", "forces", "virial"};

// whitespace-separated words (not utils::split_words, which also parses quotes:
// metadata values are plain lists)
std::vector<std::string> split_words(const std::string &s)
{
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// x86 feature flags of this CPU ("flags" line of /proc/cpuinfo); empty when unknown
std::set<std::string> cpu_flags()
{
  std::set<std::string> flags;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      for (const auto &w : split_words(line.substr(colon + 1))) flags.insert(w);
      break;
    }
  }
  return flags;
}

// /proc/cpuinfo flags needed by each vector ISA torch names in AOTI_CPU_ISA
// (torch._inductor.cpu_vec_isa: the -m flags it compiles that ISA with)
const std::map<std::string, std::vector<std::string>> &isa_flags()
{
  static const std::map<std::string, std::vector<std::string>> table = {
      {"AVX2", {"avx2", "fma", "f16c"}},
      {"AVX512", {"avx512f", "avx512dq", "avx512vl", "avx512bw", "fma"}},
      {"AVX512_VNNI", {"avx512_vnni"}},
      {"AMX_TILE", {"amx_tile", "amx_bf16", "amx_int8"}},
  };
  return table;
}

// a cutoff: a positive finite number written in full (trailing blanks allowed), else -1
double parse_cutoff(const std::string &s)
{
  double value = -1.0;
  try {
    size_t used = 0;
    value = std::stod(s, &used);
    if (used != s.size() && s.find_first_not_of(" \t\n", used) != std::string::npos)
      value = -1.0;
  } catch (const std::exception &) {
    value = -1.0;
  }
  return (value > 0.0 && std::isfinite(value)) ? value : -1.0;
}

}    // namespace

std::string parse_nequip_metadata(const std::string &file, const Metadata &meta,
                                  NequipModelInfo &out)
{
  out = NequipModelInfo();
  std::string missing;
  auto get = [&](const char *key) -> std::string {
    const auto it = meta.find(key);
    if (it != meta.end()) return it->second;
    std::vector<std::string> keys;
    for (const auto &kv : meta) keys.push_back(kv.first);
    missing = fmt::format("Pair style nequip: model {} has no metadata key '{}' (keys present: "
                          "{}); it was not compiled for this pair style (nequip-compile ... "
                          "--target pair_nequip)",
                          file, key, utils::join_words(keys, ", "));
    return "";
  };

  // --- the calling convention
  out.input_names = split_words(get("nequip_aoti_inputs"));
  if (!missing.empty()) return missing;
  out.output_names = split_words(get("nequip_aoti_outputs"));
  if (!missing.empty()) return missing;
  std::vector<std::string> sorted_in = out.input_names,
                           required(std::begin(REQUIRED_INPUTS), std::end(REQUIRED_INPUTS));
  std::sort(sorted_in.begin(), sorted_in.end());
  std::sort(required.begin(), required.end());
  if (sorted_in != required)
    return fmt::format("Pair style nequip: model {} takes the inputs '{}', but this pair style "
                       "provides exactly 'pos edge_index atom_types cell edge_cell_shift' "
                       "(compile with nequip-compile ... --target pair_nequip)",
                       file, utils::join_words(out.input_names, " "));
  for (const char *name : REQUIRED_OUTPUTS)
    if (std::find(out.output_names.begin(), out.output_names.end(), name) ==
        out.output_names.end())
      return fmt::format("Pair style nequip: model {} has the outputs '{}', which lack '{}' "
                         "(this pair style needs atomic_energy, forces and virial: "
                         "nequip-compile ... --target pair_nequip)",
                         file, utils::join_words(out.output_names, " "), name);

  // --- the model's physics
  const std::string rmax_str = get("r_max");
  if (!missing.empty()) return missing;
  out.r_max = parse_cutoff(rmax_str);
  if (out.r_max < 0.0)
    return fmt::format("Pair style nequip: model {} has an invalid cutoff r_max = '{}'", file,
                       rmax_str);

  out.type_names = split_words(get("type_names"));
  if (!missing.empty()) return missing;
  if (out.type_names.empty())
    return fmt::format("Pair style nequip: model {} has an empty type_names list", file);
  const auto nt = meta.find("num_types");
  if (nt != meta.end() && nt->second != std::to_string(out.type_names.size()))
    return fmt::format("Pair style nequip: model {} declares num_types = {} but type_names '{}' "
                       "has {} names",
                       file, nt->second, utils::join_words(out.type_names, " "),
                       out.type_names.size());

  out.dtype = get("model_dtype");
  if (!missing.empty()) return missing;
  if (out.dtype != "float64" && out.dtype != "float32")
    return fmt::format("Pair style nequip: model {} has model_dtype '{}'; this pair style runs "
                       "float32 or float64 models",
                       file, out.dtype);

  const auto pet = meta.find("per_edge_type_cutoff");
  if (pet != meta.end()) {
    const auto words = split_words(pet->second);
    const size_t n = out.type_names.size();
    if (words.size() != n * n)
      return fmt::format("Pair style nequip: model {} has {} per_edge_type_cutoff values, "
                         "expected {} ({} types squared)",
                         file, words.size(), n * n, n);
    for (const auto &w : words) {
      const double rc = parse_cutoff(w);
      if (rc < 0.0 || rc > out.r_max * (1.0 + 1e-12))
        return fmt::format("Pair style nequip: model {} has a per_edge_type_cutoff entry '{}' "
                           "outside (0, r_max = {}]",
                           file, w, out.r_max);
      out.type_cutoff.push_back(rc);
    }
  }
  return "";
}

std::string aoti_runs_here(const std::string &file, const Metadata &meta,
                           const std::string &torch_version)
{
  const auto dev = meta.find("AOTI_DEVICE_KEY");
  if (dev != meta.end() && dev->second != "cpu")
    return fmt::format("Pair style nequip: model {} was compiled for device '{}', this pair "
                       "style runs on the CPU: compile it with nequip-compile ... --device cpu",
                       file, dev->second);
  const auto plat = meta.find("AOTI_PLATFORM");
  if (plat != meta.end() && plat->second != "linux")
    return fmt::format("Pair style nequip: model {} was compiled for platform '{}', not linux: "
                       "compile it again on this machine",
                       file, plat->second);
  struct utsname uts;
  const auto mach = meta.find("AOTI_MACHINE");
  if (mach != meta.end() && uname(&uts) == 0 && mach->second != uts.machine)
    return fmt::format("Pair style nequip: model {} was compiled for a {} CPU but this machine "
                       "is {}: compile it again on this machine",
                       file, mach->second, uts.machine);
  const auto isa = meta.find("AOTI_CPU_ISA");
  if (isa != meta.end()) {
    const auto flags = cpu_flags();
    std::vector<std::string> missing;
    if (!flags.empty())
      for (const auto &token : split_words(isa->second)) {
        const auto need = isa_flags().find(token);
        if (need == isa_flags().end()) continue;
        for (const auto &flag : need->second)
          if (!flags.count(flag)) missing.push_back(token + "(" + flag + ")");
      }
    if (!missing.empty())
      return fmt::format("Pair style nequip: model {} was compiled for a CPU with the vector "
                         "instruction sets '{}', but this CPU lacks {}: running it would crash "
                         "with an illegal instruction; compile the model again on this machine "
                         "(nequip-compile ... --mode aotinductor --device cpu)",
                         file, isa->second, utils::join_words(missing, ", "));
  }
  const auto tv = meta.find("torch_version");
  if (tv != meta.end()) {
    const std::string want = tv->second.substr(0, tv->second.find('+'));
    if (want != torch_version)
      return fmt::format("Pair style nequip: model {} was compiled with torch {} but this plugin "
                         "runs libtorch {}: compile the model again with torch {} (or rebuild "
                         "the plugin against torch {})",
                         file, tv->second, torch_version, torch_version, want);
  }
  return "";
}

}    // namespace anharmbench
