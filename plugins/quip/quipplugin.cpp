/* ----------------------------------------------------------------------
   anharmbench: registration of pair style quip (the one lammpsplugin_init
   of quipplugin.so)
------------------------------------------------------------------------- */

#include "anharmbench_lammpsplugin.h"

#include "pair_quip.h"

ANHARMBENCH_PLUGIN_EXPORT void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  anharmbench::register_pair<LAMMPS_NS::PairQUIP>(
      lmp, handle, regfunc, "quip",
      "anharmbench pair style quip (GAP models through QUIP's LAMMPS interface) v1",
      "anharmbench");
}
