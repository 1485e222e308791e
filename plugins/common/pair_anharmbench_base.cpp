/* ----------------------------------------------------------------------
   anharmbench: the shared part of the project's pair styles (see
   pair_anharmbench_base.h). Compiled into every plugin by
   anharmbench_add_plugin (plugins/cmake/AnharmbenchPlugin.cmake).
------------------------------------------------------------------------- */

#include "pair_anharmbench_base.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "update.h"
#include "utils.h"

#include <cstring>

using namespace LAMMPS_NS;

/* ---------------------------------------------------------------------- */

PairAnharmbenchBase::PairAnharmbenchBase(LAMMPS *lmp, const char *style_name,
                                         const char *model_usage, const char *type_usage) :
    Pair(lmp), style(style_name), model_args(model_usage), type_word(type_usage)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // each style tallies its own virial in compute()
  centroidstressflag = CENTROID_NOTAVAIL;
}

/* ---------------------------------------------------------------------- */

PairAnharmbenchBase::~PairAnharmbenchBase()
{
  if (copymode) return;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

/* ---------------------------------------------------------------------- */

void PairAnharmbenchBase::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      setflag[i][j] = 0;
      cutsq[i][j] = 0.0;
    }
}

/* ---------------------------------------------------------------------- */

void PairAnharmbenchBase::settings(int narg, char ** /*arg*/)
{
  if (narg != 0)
    error->all(FLERR,
               "Illegal pair_style {} command: it takes no arguments (got {}); the model is "
               "given to pair_coeff * * {}",
               style, narg, model_args);
}

/* ----------------------------------------------------------------------
   pair_coeff * * <nfixed model arguments> WORD_1 ... WORD_ntypes
------------------------------------------------------------------------- */

void PairAnharmbenchBase::read_coeff_args(int narg, char **arg, int nfixed)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 2 + nfixed + ntypes)
    error->all(FLERR,
               "Incorrect args for pair_coeff of pair style {}: expected '* * {}' and one {} "
               "for each of the {} atom types, got {} arguments",
               style, model_args, type_word, ntypes, narg);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR,
               "Pair style {} needs 'pair_coeff * * {} {}...' (got {} {}): one model describes "
               "every pair of atom types",
               style, model_args, type_word, arg[0], arg[1]);
  type_args.assign(ntypes + 1, "");
  for (int itype = 1; itype <= ntypes; itype++) type_args[itype] = arg[1 + nfixed + itype];
}

/* ---------------------------------------------------------------------- */

void PairAnharmbenchBase::set_all_pairs()
{
  const int ntypes = atom->ntypes;
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

/* ---------------------------------------------------------------------- */

void PairAnharmbenchBase::check_init()
{
  // here, not in settings(): `units` may follow `pair_style` until the box exists
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR,
               "Pair style {} requires 'units metal' (eV, Angstrom), got units {}; put 'units "
               "metal' before the box is created",
               style, update->unit_style);
  if (atom->tag_enable == 0)
    error->all(FLERR, "Pair style {} requires atom IDs (do not use 'atom_modify id no')", style);
}

/* ---------------------------------------------------------------------- */

std::vector<int> PairAnharmbenchBase::map_type_args(const std::vector<std::string> &names) const
{
  std::vector<int> index(type_args.size(), -1);
  for (size_t itype = 1; itype < type_args.size(); itype++)
    for (size_t k = 0; k < names.size(); k++)
      if (names[k] == type_args[itype]) {
        index[itype] = (int) k;
        break;
      }
  return index;
}

/* ---------------------------------------------------------------------- */

void PairAnharmbenchBase::add_symmetric_virial(double *v, const double *m)
{
  v[0] += m[0];
  v[1] += m[4];
  v[2] += m[8];
  v[3] += 0.5 * (m[1] + m[3]);
  v[4] += 0.5 * (m[2] + m[6]);
  v[5] += 0.5 * (m[5] + m[7]);
}

/* ---------------------------------------------------------------------- */

void PairAnharmbenchBase::agree_on_error(const std::string &file, int line, const std::string &err)
{
  const int nprocs = comm->nprocs;
  const int mine = err.empty() ? nprocs : comm->me;
  int first = nprocs;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, world);
  if (first == nprocs) return;
  // Error::all prints on rank 0 only: give every rank the failing rank's message
  std::string message = err;
  int length = (int) message.size();
  MPI_Bcast(&length, 1, MPI_INT, first, world);
  message.resize(length);
  MPI_Bcast(&message[0], length, MPI_CHAR, first, world);
  if (first != 0) message += fmt::format(" (on MPI rank {})", first);
  error->all(file, line, message);
}
