/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: what the project's pair styles (taylor, quip, nequip) share.

   Each of them evaluates one model file for all atom types at once:
     pair_style NAME
     pair_coeff * * FILE [more fixed arguments] WORD_1 ... WORD_ntypes
   (WORD_k: what atom type k is for the model, e.g. an element name or an
   atomic number). This class is that part of LAMMPS_NS::Pair:
     - the flags of such a style (one `pair_coeff * *`, many-body, no single(),
       no restart info, the style tallies its own virial, no centroid stress);
     - setflag/cutsq allocation and release;
     - `pair_style NAME` without arguments;
     - the `pair_coeff` argument count and `* *` checks, keeping the per-type
       words in type_args, and mapping them onto the model's names;
     - the init-time requirements (units metal, atom IDs);
     - agree_on_error(): a check that only some MPI ranks fail (a model file
       one node cannot read, a CPU feature one node lacks) becomes the same
       LAMMPS error on every rank, instead of error->all on some ranks, which
       waits forever in its barrier for the others.
   A derived style implements coeff() (calling read_coeff_args first),
   init_style() (calling check_init first), init_one, compute, memory_usage.
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_ANHARMBENCH_BASE_H
#define LMP_PAIR_ANHARMBENCH_BASE_H

#include "pair.h"

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairAnharmbenchBase : public Pair {
 public:
  // style_name: the name in pair_style; model_usage: the pair_coeff arguments
  // after `* *` that name the model (e.g. "FILE"); type_usage: what each
  // per-type word is (e.g. "element name"). String literals (kept as pointers).
  PairAnharmbenchBase(class LAMMPS *, const char *style_name, const char *model_usage,
                      const char *type_usage);
  ~PairAnharmbenchBase() override;

  void settings(int, char **) override;

 protected:
  const char *style;                      // e.g. "taylor"
  const char *model_args;                 // e.g. "FILE \"IP GAP\""
  const char *type_word;                  // e.g. "atomic number"
  std::vector<std::string> type_args;     // atom type -> its word in pair_coeff (index 0 unused)

  virtual void allocate();
  // pair_coeff: allocate, check `* *` and the count (nfixed model arguments after
  // `* *`, then one word per atom type), fill type_args
  void read_coeff_args(int narg, char **arg, int nfixed);
  // pair_coeff done: every pair of atom types is set
  void set_all_pairs();
  // init_style: units metal and atom IDs
  void check_init();
  // type_args mapped onto names: index of each type's word in names, -1 if absent
  std::vector<int> map_type_args(const std::vector<std::string> &names) const;
  // v (LAMMPS's virial order xx yy zz xy xz yz) += the symmetric part of the 3x3
  // matrix m, stored row- or column-major (the same for the symmetric part)
  static void add_symmetric_virial(double *v, const double *m);
  // collective: when err is non-empty on any rank, every rank stops with the
  // message of the lowest such rank (pass FLERR of the call site)
  void agree_on_error(const std::string &file, int line, const std::string &err);
};

}    // namespace LAMMPS_NS

#endif
