/* ----------------------------------------------------------------------
   anharmbench: pair style quip (see pair_quip.h and plugins/quip/README.md)

   QUIP's libPotentials exports a small C interface for LAMMPS:
     quip_lammps_api_version()            -> 1
     quip_lammps_potential_initialise()   loads a model file, returns an opaque
                                          handle (an int array) and the cutoff
     quip_lammps_wrapper()                energy, per-atom energies, forces on
                                          owned and ghost atoms, global and
                                          per-atom virials for the owned atoms
   The wrapper takes LAMMPS's full neighbor list of the owned atoms (ghost atoms
   carry the periodic images, so no lattice shifts are needed), atom indices
   0-based in ilist and 1-based in the packed neighbor list.

   Energy  E     = QUIP's energy of the owned atoms (eV)
   Forces  f_i  += QUIP's force on atom i, owned and ghost (newton pair on:
                   LAMMPS sums ghost forces back onto their owners)
   Virial  W     = QUIP's virial (eV), symmetrised; per-atom virials likewise

   QUIP keeps ONE loaded model per process (a saved variable of the Fortran
   interface). Several LAMMPS instances in one process may use different models:
   each PairQUIP remembers its file, and the instance about to compute reloads
   its own model when another instance loaded the last one.

   Errors inside QUIP. QUIP reports a fatal error by printing "SYSTEM ABORT" and
   ending the process (Fortran `stop`); the one hook it offers, f90wrap_abort_,
   is meant for quippy, and the interface's own system_initialise switches it
   off. Nothing can be recovered from inside: jumping out of the Fortran frames
   (setjmp/longjmp) is undefined behaviour and leaves QUIP's saved model, parser
   and atoms object half-built. So the plugin checks beforehand, with LAMMPS
   errors, what QUIP would stop on when it loads a model -- the file and every
   sparseX file it names are readable on every rank, the XML is complete, the init
   string is 'IP GAP [label=NAME]', the label names a <GAP_params> whose fitted
   <gpSparse> and <gpCoordinates> are all there, each with a descriptor whose
   cutoff is a positive length -- and, before each evaluation, that no two atoms
   coincide. What remains is a model QUIP cannot use for reasons not visible in
   the file's structure (e.g. one from a newer GAP version, or corrupt numbers):
   that still ends the process with QUIP's message on stderr.

   QUIP's wrapper also keeps ONE atoms object between calls (a saved variable)
   and sets its cutoff only when the atom count changes. After another model is
   loaded, a structure of the same size would be evaluated with the previous
   model's cutoff, and QUIP stops the process when a descriptor reaches further
   ("descriptor cutoff larger than atoms cutoff"). So after every model load the
   plugin first evaluates a one- or two-atom dummy with no owned atoms (which
   computes nothing) and thereby makes the wrapper rebuild its atoms object with
   the new model's cutoff on the next real call.
------------------------------------------------------------------------- */

#include "pair_quip.h"

#include "gap_file.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>

// --------------------------------------------------------------------------
// QUIP's LAMMPS interface (bind(c) Fortran routines of libPotentials).
// Array arguments are Fortran arrays: positions, forces (3, n), virials
// (3, 3) and (9, n), column-major; atomic numbers and atom IDs per atom.
extern "C" {
int quip_lammps_api_version();
void quip_lammps_potential_initialise(int *handle, int *n_handle, double *cutoff,
                                      const char *file, const int *n_file,
                                      const char *init_string, const int *n_init_string);
void quip_lammps_wrapper(const int *nlocal, const int *nghost, const int *atomic_numbers,
                         const int *tag, const int *inum, const int *sum_num_neigh,
                         const int *ilist, const int *num_neigh, const int *neigh,
                         const double *lattice, const int *handle, const int *n_handle,
                         const double *x, double *energy, double *local_e, double *virial,
                         double *local_virial, double *force);

// libAtoms (a dependency of libPotentials): quippy's state. Loading a model through
// the interface re-runs system_initialise, which empties the verbosity stack that
// quippy (when imported in the same process) pops at exit.
int __system_module_MOD_get_quippy_running();
void __system_module_MOD_verbosity_push(const int *level);
}

namespace {

// The one API version of the interface this plugin is written for.
constexpr int QUIP_API_VERSION = 1;
constexpr int MAX_Z = anharmbench::GAP_MAX_Z;
// QUIP's wrapper stops the process when two atoms are closer than 1e-10 A
constexpr double MIN_DISTANCE_SQ = 1.0e-20;

// Process-wide: which PairQUIP instance's model QUIP holds now (0: none).
long loaded_instance = 0;
long next_instance = 0;
// quippy is (or was) imported in this process; a model load resets libAtoms'
// record of it, so remember it here.
bool quippy_seen = false;
// A model was loaded since the wrapper last rebuilt its saved atoms object (see
// the top of this file).
bool wrapper_atoms_stale = true;
// The atom count of the wrapper's saved atoms object (0: none yet).
int wrapper_atoms_n = 0;

std::string species_list(const std::vector<int> &zs)
{
  std::string out;
  for (int z : zs) out += (out.empty() ? "" : " ") + std::to_string(z);
  return out;
}

bool file_stat(const std::string &path, long long &size, long long &mtime_ns)
{
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  size = (long long) st.st_size;
  mtime_ns = (long long) st.st_mtim.tv_sec * 1000000000LL + (long long) st.st_mtim.tv_nsec;
  return true;
}

void bcast_string(std::string &s, int root, MPI_Comm comm)
{
  int n = (int) s.size();
  MPI_Bcast(&n, 1, MPI_INT, root, comm);
  s.resize(n);
  if (n > 0) MPI_Bcast(&s[0], n, MPI_CHAR, root, comm);
}

}    // namespace

// Called by libAtoms' error_abort with a Fortran string (message and gfortran's
// hidden length argument) when it believes it runs under quippy. libPotentials
// needs the symbol, which quippy's Python extension provides when quippy is
// imported. The interface's system_initialise turns quippy mode off, so this is
// reached only from a quippy call after the plugin's symbol was bound: end the
// process as QUIP itself would (returning to the Fortran caller is not allowed).
extern "C" __attribute__((visibility("default"))) void f90wrap_abort_(const char *message,
                                                                       size_t length)
{
  size_t n = message == nullptr ? 0 : length;
  while (n > 0 && (message[n - 1] == ' ' || message[n - 1] == '\0')) n--;
  std::fprintf(stderr, "ERROR (QUIP): %.*s\n", (int) n, n > 0 ? message : "");
  std::fflush(stderr);
  std::exit(1);
}

using namespace LAMMPS_NS;

/* ---------------------------------------------------------------------- */

PairQUIP::PairQUIP(LAMMPS *lmp) :
    PairAnharmbenchBase(lmp, "quip", "FILE \"IP GAP\"", "atomic number"), file_size(-1),
    file_mtime(-1), cutoff(0.0), instance_id(++next_instance)
{
  // QUIP returns the virial: no_virial_fdotr_compute
}

/* ---------------------------------------------------------------------- */

PairQUIP::~PairQUIP()
{
  if (copymode) return;
  if (loaded_instance == instance_id) loaded_instance = 0;
}

/* ---------------------------------------------------------------------- */

void PairQUIP::settings(int narg, char **arg)
{
  PairAnharmbenchBase::settings(narg, arg);
  const int api = quip_lammps_api_version();
  if (api != QUIP_API_VERSION)
    error->all(FLERR,
               "QUIP's LAMMPS interface has API version {}, pair style quip is written for "
               "version {}; rebuild the plugin against a matching quippy-ase",
               api, QUIP_API_VERSION);
}

/* ----------------------------------------------------------------------
   pair_coeff * * FILE "IP GAP [label=NAME]" Z_1 ... Z_ntypes
------------------------------------------------------------------------- */

void PairQUIP::coeff(int narg, char **arg)
{
  read_coeff_args(narg, arg, 2);
  const int ntypes = atom->ntypes;
  model_file = arg[2];
  init_string = utils::trim(arg[3]);
  parse_init_string();

  type_z.assign(ntypes + 1, 0);
  for (int itype = 1; itype <= ntypes; itype++) {
    const char *word = type_args[itype].c_str();
    char *end = nullptr;
    const long z = std::strtol(word, &end, 10);
    if (end == word || *end != '\0' || z < 1 || z > MAX_Z)
      error->all(FLERR,
                 "pair_coeff of pair style quip: '{}' for atom type {} is not an atomic number "
                 "(1..{}); give one atomic number per atom type, e.g. 90 8 for Th O",
                 word, itype, MAX_Z);
    type_z[itype] = (int) z;
  }

  inspect_model_file();
  check_readable();

  if (!model_species.empty()) {
    for (int itype = 1; itype <= ntypes; itype++)
      if (!std::binary_search(model_species.begin(), model_species.end(), type_z[itype]))
        error->all(FLERR,
                   "Atom type {} is atomic number {}, a species GAP model {} does not describe "
                   "(its species: {}); use a model trained on that species",
                   itype, type_z[itype], model_file, species_list(model_species));
  }

  if (loaded_instance == instance_id) loaded_instance = 0;    // force a reload
  load_model();
  set_all_pairs();
}

/* ----------------------------------------------------------------------
   'IP GAP' or 'IP GAP label=NAME': QUIP stops the process on an option it
   cannot use, so no other option is passed on
------------------------------------------------------------------------- */

void PairQUIP::parse_init_string()
{
  const auto words = utils::split_words(init_string);
  if (words.size() < 2 || words[0] != "IP" || words[1] != "GAP")
    error->all(FLERR,
               "Pair style quip (anharmbench) evaluates GAP models only: the init string must "
               "start with 'IP GAP', got '{}'",
               init_string);
  label.clear();
  for (size_t k = 2; k < words.size(); k++) {
    const std::string &w = words[k];
    if (label.empty() && w.rfind("label=", 0) == 0 && w.size() > 6 &&
        w.find_first_of("\"'{}") == std::string::npos) {
      label = w.substr(6);
      continue;
    }
    error->all(FLERR,
               "Pair style quip: '{}' in the init string '{}' is not supported; give 'IP GAP' "
               "or 'IP GAP label=NAME' with NAME the label of a <GAP_params> of the model file "
               "(QUIP ends the process on an option it cannot use, so the plugin passes no "
               "other)",
               w, init_string);
  }
}

/* ----------------------------------------------------------------------
   rank 0 reads the model file and checks what QUIP will need from it
   (inspect_gap); the verdict, species and sparseX files go to every rank
------------------------------------------------------------------------- */

void PairQUIP::inspect_model_file()
{
  anharmbench::GapModel model;
  long long stamp[2] = {-1, -1};
  if (comm->me == 0) {
    std::ifstream in(model_file, std::ios::binary);
    if (!in) {
      model.error = fmt::format("Cannot open QUIP model file {}: {}", model_file,
                                utils::getsyserror());
    } else {
      std::stringstream buffer;
      buffer << in.rdbuf();
      model = anharmbench::inspect_gap(model_file, buffer.str(), label);
      file_stat(model_file, stamp[0], stamp[1]);
    }
  }
  agree_on_error(FLERR, model.error);

  int nspecies = (int) model.species.size();
  MPI_Bcast(&nspecies, 1, MPI_INT, 0, world);
  model.species.resize(nspecies);
  if (nspecies > 0) MPI_Bcast(model.species.data(), nspecies, MPI_INT, 0, world);
  int any = model.any_species ? 1 : 0;
  MPI_Bcast(&any, 1, MPI_INT, 0, world);
  MPI_Bcast(stamp, 2, MPI_LONG_LONG, 0, world);
  int nfiles = (int) model.sparse_files.size();
  MPI_Bcast(&nfiles, 1, MPI_INT, 0, world);
  model.sparse_files.resize(nfiles);
  for (auto &f : model.sparse_files) bcast_string(f, 0, world);

  model_species = any ? std::vector<int>() : model.species;
  sparse_files = model.sparse_files;
  file_size = stamp[0];
  file_mtime = stamp[1];
}

/* ----------------------------------------------------------------------
   every rank loads the model through QUIP, which ends the process when it
   cannot open a file: each rank checks that it can, and all stop together
------------------------------------------------------------------------- */

void PairQUIP::check_readable()
{
  std::string err;
  std::vector<std::string> files(1, model_file);
  files.insert(files.end(), sparse_files.begin(), sparse_files.end());
  for (const auto &f : files) {
    FILE *fp = fopen(f.c_str(), "rb");
    if (fp == nullptr) {
      err = f == model_file
          ? fmt::format("Cannot open QUIP model file {}: {}", f, utils::getsyserror())
          : fmt::format("Cannot open {}, a sparseX file GAP model {} needs: {}; keep the "
                        "files gap_fit wrote next to the xml",
                        f, model_file, utils::getsyserror());
      break;
    }
    fclose(fp);
  }
  agree_on_error(FLERR, err);
}

/* ----------------------------------------------------------------------
   hand this instance's model to QUIP (two calls: the first loads the model
   and returns the size of the handle, the second fills the handle). The
   checks in coeff() have run: see the top of this file for what QUIP may
   still stop on.
------------------------------------------------------------------------- */

void PairQUIP::load_model()
{
  const int nfile = (int) model_file.size();
  const int ninit = (int) init_string.size();
  int nhandle = 0;
  int dummy = 0;
  double cut = 0.0;
  if (__system_module_MOD_get_quippy_running()) quippy_seen = true;
  quip_lammps_potential_initialise(&dummy, &nhandle, &cut, model_file.c_str(), &nfile,
                                   init_string.c_str(), &ninit);
  // quippy set up libAtoms with system_initialise + verbosity_push(0) and undoes
  // both at exit; the call above re-initialised libAtoms with a one-entry stack:
  // push again, or the interpreter exits with "stack_value on empty stack"
  if (quippy_seen) {
    const int normal = 0;
    __system_module_MOD_verbosity_push(&normal);
  }
  if (nhandle > 0) {
    quip_handle.assign(nhandle, 0);
    quip_lammps_potential_initialise(quip_handle.data(), &nhandle, &cut, model_file.c_str(),
                                     &nfile, init_string.c_str(), &ninit);
  }

  std::string err;
  if (nhandle <= 0)
    err = fmt::format("QUIP returned no potential handle for model {} with '{}'", model_file,
                      init_string);
  else if (!(cut > 0.0) || !std::isfinite(cut))
    err = fmt::format("QUIP model {} reports a cutoff of {} Angstrom; expected a positive "
                      "length: check the descriptors' cutoff= in the file",
                      model_file, cut);
  loaded_instance = err.empty() ? instance_id : 0;
  wrapper_atoms_stale = true;
  agree_on_error(FLERR, err);
  cutoff = cut;
}

/* ----------------------------------------------------------------------
   make QUIP's wrapper drop the atoms object it saved with an earlier model's
   cutoff: a call whose atom count differs from the saved object's (1 atom, or
   2 when it has 1) makes the wrapper rebuild it with this model's cutoff; the
   next real call either rebuilds it again at its own size or keeps this one,
   both with the right cutoff. The dummy owns no atoms (inum = 0), so QUIP
   evaluates no descriptor for it.
------------------------------------------------------------------------- */

void PairQUIP::reset_wrapper_atoms()
{
  const int ndummy = wrapper_atoms_n == 1 ? 2 : 1;
  const int nzero = 0;
  const int nhandle = (int) quip_handle.size();
  const double side = 2.0 * cutoff + 10.0;
  const double lattice[9] = {side, 0.0, 0.0, 0.0, side, 0.0, 0.0, 0.0, side};
  const double xd[6] = {0.0, 0.0, 0.0, 0.5 * side, 0.5 * side, 0.5 * side};
  const int zd[2] = {type_z[1], type_z[1]};
  const int tagd[2] = {1, 2};
  int idummy[1] = {0};
  double energy = 0.0;
  double vir[9] = {0.0};
  double local_ed[2] = {0.0, 0.0};
  double forced[6] = {0.0};
  double local_vird[18] = {0.0};
  quip_lammps_wrapper(&ndummy, &nzero, zd, tagd, &nzero, &nzero, idummy, idummy, idummy,
                      lattice, quip_handle.data(), &nhandle, xd, &energy, local_ed, vir,
                      local_vird, forced);
  wrapper_atoms_n = ndummy;
  wrapper_atoms_stale = false;
}

/* ----------------------------------------------------------------------
   before reloading: the file on disk must be the one pair_coeff read
------------------------------------------------------------------------- */

void PairQUIP::check_file_unchanged()
{
  int changed = 0;
  if (comm->me == 0) {
    long long size = -1, mtime = -1;
    if (!file_stat(model_file, size, mtime) || size != file_size || mtime != file_mtime)
      changed = 1;
  }
  MPI_Bcast(&changed, 1, MPI_INT, 0, world);
  if (changed)
    error->all(FLERR,
               "QUIP model file {} changed or vanished since pair_coeff read it, and another "
               "pair_style quip in this process has loaded a different model since; issue "
               "pair_coeff again to use the new file",
               model_file);
  check_readable();
}

/* ----------------------------------------------------------------------
   every species of the model must be present: a GAP fitted to a compound
   does not describe a structure without one of its elements
------------------------------------------------------------------------- */

void PairQUIP::check_species_present()
{
  if (model_species.empty()) return;
  const int ntypes = atom->ntypes;
  std::vector<bigint> local(ntypes + 1, 0), total(ntypes + 1, 0);
  for (int i = 0; i < atom->nlocal; i++) local[atom->type[i]]++;
  MPI_Allreduce(local.data(), total.data(), ntypes + 1, MPI_LMP_BIGINT, MPI_SUM, world);
  std::set<int> present;
  for (int itype = 1; itype <= ntypes; itype++)
    if (total[itype] > 0) present.insert(type_z[itype]);
  std::vector<int> missing;
  for (int z : model_species)
    if (present.count(z) == 0) missing.push_back(z);
  if (!missing.empty())
    error->all(FLERR,
               "The structure holds no atom of species {} (atomic numbers) that GAP model {} "
               "was trained with (its species: {}); a GAP fitted to these species does not "
               "describe a structure without them",
               species_list(missing), model_file, species_list(model_species));
}

/* ---------------------------------------------------------------------- */

void PairQUIP::init_style()
{
  check_init();
  if (force->newton_pair != 1)
    error->all(FLERR, "Pair style quip requires newton pair on (QUIP returns forces on ghost "
                      "atoms): use 'newton on', the default");
  check_species_present();
  if (loaded_instance != instance_id) {
    check_file_unchanged();
    load_model();
  }
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

/* ---------------------------------------------------------------------- */

double PairQUIP::init_one(int /*i*/, int /*j*/)
{
  return cutoff;
}

/* ---------------------------------------------------------------------- */

void PairQUIP::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (loaded_instance != instance_id) {
    check_file_unchanged();
    load_model();
  }

  const int nlocal = atom->nlocal;
  const int nghost = atom->nghost;
  const int ntotal = nlocal + nghost;
  const int inum = list->inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  // Pack the full neighbor list for QUIP, keeping only pairs within the model's
  // cutoff: LAMMPS's list also holds the skin shell (2 A by default in metal
  // units), which QUIP's descriptors would scan and discard (the 3-body term
  // scans pairs of neighbours, so the skin costs about (1 + skin/rc)^6).
  double **x = atom->x;
  const double cutoffsq = cutoff * cutoff;
  num_neigh.resize(std::max(inum, 1));
  if (neigh.size() < 1024) neigh.resize(1024);
  bigint nneigh = 0;
  for (int ii = 0; ii < inum; ii++) {
    const int i = ilist[ii];
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    if (nneigh + jnum > (bigint) neigh.size()) neigh.resize(nneigh + jnum + neigh.size() / 2);
    int kept = 0;
    for (int jj = 0; jj < jnum; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0];
      const double dy = x[j][1] - x[i][1];
      const double dz = x[j][2] - x[i][2];
      const double rsq = dx * dx + dy * dy + dz * dz;
      // QUIP ends the process on coincident atoms; only this rank sees the pair
      if (rsq < MIN_DISTANCE_SQ)
        error->one(FLERR,
                   "Pair style quip: atoms with IDs {} and {} are at the same position ({} "
                   "{} {}); QUIP cannot evaluate coincident atoms: fix the structure",
                   atom->tag[i], atom->tag[j], x[i][0], x[i][1], x[i][2]);
      if (rsq <= cutoffsq) {
        neigh[nneigh + kept] = j + 1;    // QUIP numbers atoms from 1
        kept++;
      }
    }
    num_neigh[ii] = kept;
    nneigh += kept;
  }
  if (nneigh > MAXSMALLINT)
    error->one(FLERR, "Pair style quip: {} neighbors on one rank exceed QUIP's int range",
               nneigh);
  const int sum_num_neigh = (int) nneigh;

  const int *type = atom->type;
  const tagint *tag = atom->tag;
  atomic_numbers.resize(std::max(ntotal, 1));
  tag_copy.resize(std::max(ntotal, 1));
  for (int i = 0; i < ntotal; i++) {
    atomic_numbers[i] = type_z[type[i]];
    tag_copy[i] = (int) tag[i];
  }
  ilist_copy.assign(ilist, ilist + inum);
  if (ilist_copy.empty()) ilist_copy.push_back(0);

  // lattice vectors as the columns of a 3x3 Fortran array
  const double xy = domain->triclinic ? domain->xy : 0.0;
  const double xz = domain->triclinic ? domain->xz : 0.0;
  const double yz = domain->triclinic ? domain->yz : 0.0;
  const double lattice[9] = {domain->xprd, 0.0, 0.0, xy, domain->yprd, 0.0, xz, yz,
                             domain->zprd};

  local_e.assign(std::max(ntotal, 1), 0.0);
  quip_force.assign(3 * (size_t) std::max(ntotal, 1), 0.0);
  local_virial.assign(9 * (size_t) std::max(ntotal, 1), 0.0);
  double energy = 0.0;
  double vir[9] = {0.0};
  const int nhandle = (int) quip_handle.size();
  double *xflat = ntotal > 0 ? &x[0][0] : nullptr;
  double xdummy[3] = {0.0, 0.0, 0.0};

  if (wrapper_atoms_stale) reset_wrapper_atoms();
  quip_lammps_wrapper(&nlocal, &nghost, atomic_numbers.data(), tag_copy.data(), &inum,
                      &sum_num_neigh, ilist_copy.data(), num_neigh.data(), neigh.data(), lattice,
                      quip_handle.data(), &nhandle, xflat ? xflat : xdummy, &energy,
                      local_e.data(), vir, local_virial.data(), quip_force.data());
  if (nlocal > 0) wrapper_atoms_n = ntotal;    // the wrapper skips everything otherwise

  double **f = atom->f;
  for (int i = 0; i < ntotal; i++) {
    f[i][0] += quip_force[3 * i + 0];
    f[i][1] += quip_force[3 * i + 1];
    f[i][2] += quip_force[3 * i + 2];
  }
  if (eflag_global) eng_vdwl += energy;
  if (eflag_atom)
    for (int i = 0; i < ntotal; i++) eatom[i] += local_e[i];
  // QUIP's virials are Fortran (3,3) arrays: element (a,b) at a + 3b
  if (vflag_global) add_symmetric_virial(virial, vir);
  if (vflag_atom)
    for (int i = 0; i < ntotal; i++)
      add_symmetric_virial(vatom[i], &local_virial[9 * (size_t) i]);
}

/* ---------------------------------------------------------------------- */

double PairQUIP::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) (atomic_numbers.capacity() + num_neigh.capacity() + neigh.capacity() +
                     ilist_copy.capacity() + tag_copy.capacity()) *
      sizeof(int);
  bytes += (double) (local_e.capacity() + quip_force.capacity() + local_virial.capacity()) *
      sizeof(double);
  return bytes;
}
