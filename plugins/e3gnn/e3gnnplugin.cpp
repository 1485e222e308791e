/* ----------------------------------------------------------------------
   anharmbench: registration of pair style e3gnn (the one lammpsplugin_init
   of e3gnnplugin.so)

   PairE3GNN is SevenNet's own pair style (Yutack Park, SNU; GPL, as LAMMPS).
   Its sources are not in this repository: plugins/e3gnn/CMakeLists.txt copies
   them from the installed sevenn package (sevenn/pair_e3gnn/) into the build
   tree and patches them there. Usage (SevenNet-0: see
   anharmbench.mlip.universal.sevennet_lammps_potential):
     newton on
     pair_style e3gnn
     pair_coeff * * deployed_serial.pt El_1 El_2 ... El_ntypes
   deployed_serial.pt is written by `sevenn_get_model 7net-0` (or
   sevenn.scripts.deploy.deploy). One MPI rank only (serial deployment).
------------------------------------------------------------------------- */

#include "anharmbench_lammpsplugin.h"

#include "pair_e3gnn.h"

#ifndef ANHARMBENCH_SEVENN_VERSION
#define ANHARMBENCH_SEVENN_VERSION "unknown"
#endif

ANHARMBENCH_PLUGIN_EXPORT void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  anharmbench::register_pair<LAMMPS_NS::PairE3GNN>(
      lmp, handle, regfunc, "e3gnn",
      "SevenNet pair style e3gnn (TorchScript SevenNet models) from sevenn "
      ANHARMBENCH_SEVENN_VERSION ", built by anharmbench",
      "Yutack Park (SNU), SevenNet");
}
