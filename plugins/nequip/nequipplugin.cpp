/* ----------------------------------------------------------------------
   anharmbench: registration of pair style nequip (the one lammpsplugin_init
   of nequipplugin.so)
------------------------------------------------------------------------- */

#include "anharmbench_lammpsplugin.h"

#include "pair_nequip.h"

ANHARMBENCH_PLUGIN_EXPORT void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  anharmbench::register_pair<LAMMPS_NS::PairNequIP>(
      lmp, handle, regfunc, "nequip",
      "anharmbench pair style nequip (AOTInductor-compiled NequIP and compatible models) v1",
      "anharmbench");
}
