/* ----------------------------------------------------------------------
   anharmbench: registration of pair style taylor (the one lammpsplugin_init
   of taylorplugin.so)
------------------------------------------------------------------------- */

#include "anharmbench_lammpsplugin.h"

#include "pair_taylor.h"

ANHARMBENCH_PLUGIN_EXPORT void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  anharmbench::register_pair<LAMMPS_NS::PairTaylor>(
      lmp, handle, regfunc, "taylor",
      "anharmbench pair style taylor (Taylor-series Hamiltonian in displacements) v1",
      "anharmbench");
}
