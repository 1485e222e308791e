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
------------------------------------------------------------------------- */

#include "pair_quip.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
constexpr int MAX_Z = 118;

// Process-wide: which PairQUIP instance's model QUIP holds now (0: none).
long loaded_instance = 0;
long next_instance = 0;
// quippy is (or was) imported in this process; a model load resets libAtoms'
// record of it, so remember it here.
bool quippy_seen = false;

// QUIP reports fatal errors through f90wrap_abort_ (below) when it believes it
// runs inside quippy; otherwise it prints the message and stops the process
// itself. While the plugin calls into QUIP, a jump buffer is armed so that such
// an error becomes a LAMMPS error instead of a dead process.
std::jmp_buf *armed_jump = nullptr;
char abort_message[2048];

template <class Call> bool call_quip(Call &&call)
{
  std::jmp_buf here;
  std::jmp_buf *previous = armed_jump;
  if (setjmp(here) == 0) {
    armed_jump = &here;
    call();
    armed_jump = previous;
    return true;
  }
  armed_jump = previous;
  return false;
}

// Atomic numbers named by the descriptors of a QUIP model file: every Z=, Z1=,
// Z2=, ... value and every species_Z={...} list inside <descriptor> elements.
// A descriptor with no species key (or a 0) applies to every species.
void scan_descriptor(const std::string &text, std::set<int> &species, bool &any_species)
{
  bool named = false;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    const auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = tok.substr(0, eq);
    std::string value = tok.substr(eq + 1);
    std::vector<std::string> values;
    if (key == "species_Z") {
      // species_Z={90 8 } possibly split over several whitespace tokens
      std::string list = value;
      while (list.find('}') == std::string::npos && (in >> tok)) list += " " + tok;
      for (char &c : list)
        if (c == '{' || c == '}' || c == ':') c = ' ';
      std::istringstream items(list);
      std::string item;
      while (items >> item) values.push_back(item);
    } else if (key.size() >= 1 && key[0] == 'Z' &&
               key.find_first_not_of("0123456789", 1) == std::string::npos) {
      values.push_back(value);
    } else {
      continue;
    }
    for (const auto &v : values) {
      char *end = nullptr;
      const long z = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0') continue;
      named = true;
      if (z <= 0)
        any_species = true;
      else if (z <= MAX_Z)
        species.insert((int) z);
    }
  }
  if (!named) any_species = true;
}

bool file_stat(const std::string &path, long long &size, long long &mtime_ns)
{
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  size = (long long) st.st_size;
  mtime_ns = (long long) st.st_mtim.tv_sec * 1000000000LL + (long long) st.st_mtim.tv_nsec;
  return true;
}

std::string species_list(const std::vector<int> &zs)
{
  std::string out;
  for (int z : zs) out += (out.empty() ? "" : " ") + std::to_string(z);
  return out;
}

}    // namespace

// Called by QUIP (libAtoms' error_abort) with a Fortran string: message and its
// length (gfortran's hidden length argument). Exported: libPotentials needs the
// symbol, which quippy's Python extension provides when quippy is imported.
extern "C" __attribute__((visibility("default"))) void f90wrap_abort_(const char *message,
                                                                       size_t length)
{
  size_t n = std::min(length, sizeof(abort_message) - 1);
  if (message == nullptr) n = 0;
  if (n > 0) std::memcpy(abort_message, message, n);
  while (n > 0 && (abort_message[n - 1] == ' ' || abort_message[n - 1] == '\0')) n--;
  abort_message[n] = '\0';
  if (armed_jump != nullptr) std::longjmp(*armed_jump, 1);
  std::fprintf(stderr, "ERROR (QUIP, outside a pair_style quip call): %s\n", abort_message);
  std::fflush(stderr);
  std::exit(1);
}

using namespace LAMMPS_NS;

/* ---------------------------------------------------------------------- */

PairQUIP::PairQUIP(LAMMPS *lmp) :
    Pair(lmp), file_size(-1), file_mtime(-1), cutoff(0.0), instance_id(++next_instance)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // QUIP returns the virial
  centroidstressflag = CENTROID_NOTAVAIL;
}

/* ---------------------------------------------------------------------- */

PairQUIP::~PairQUIP()
{
  if (copymode) return;
  if (loaded_instance == instance_id) loaded_instance = 0;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

/* ---------------------------------------------------------------------- */

void PairQUIP::allocate()
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

void PairQUIP::settings(int narg, char ** /*arg*/)
{
  if (narg != 0)
    error->all(FLERR, "Illegal pair_style quip command: it takes no arguments (got {})", narg);
  const int api = quip_lammps_api_version();
  if (api != QUIP_API_VERSION)
    error->all(FLERR,
               "QUIP's LAMMPS interface has API version {}, pair style quip is written for "
               "version {}; rebuild the plugin against a matching quippy-ase",
               api, QUIP_API_VERSION);
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "Pair style quip requires 'units metal' (QUIP models use eV and Angstrom)");
}

/* ----------------------------------------------------------------------
   pair_coeff * * FILE "IP GAP ..." Z_1 ... Z_ntypes
------------------------------------------------------------------------- */

void PairQUIP::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 4 + ntypes)
    error->all(FLERR,
               "Incorrect args for pair_coeff of pair style quip: expected '* * FILE "
               "\"IP GAP\"' and one atomic number for each of the {} atom types, got {} "
               "arguments",
               ntypes, narg);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "Pair style quip needs 'pair_coeff * * FILE \"IP GAP\" Z...' (got {} {})",
               arg[0], arg[1]);

  model_file = arg[2];
  init_string = utils::trim(arg[3]);
  const auto words = utils::split_words(init_string);
  if (words.size() < 2 || words[0] != "IP" || words[1] != "GAP")
    error->all(FLERR,
               "Pair style quip (anharmbench) evaluates GAP models only: the init string must "
               "start with 'IP GAP', got '{}'",
               init_string);

  type_z.assign(ntypes + 1, 0);
  for (int itype = 1; itype <= ntypes; itype++) {
    const char *word = arg[3 + itype];
    char *end = nullptr;
    const long z = std::strtol(word, &end, 10);
    if (end == word || *end != '\0' || z < 1 || z > MAX_Z)
      error->all(FLERR,
                 "pair_coeff of pair style quip: '{}' for atom type {} is not an atomic number "
                 "(1..{}); give one atomic number per atom type, e.g. 90 8 for Th O",
                 word, itype, MAX_Z);
    type_z[itype] = (int) z;
  }

  scan_model_file();

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

  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

/* ----------------------------------------------------------------------
   read the model file on rank 0: is it a GAP file, which species does it cover
------------------------------------------------------------------------- */

void PairQUIP::scan_model_file()
{
  std::string err;
  std::vector<int> species;
  int any = 0;
  long long stamp[2] = {-1, -1};
  if (comm->me == 0) {
    std::ifstream in(model_file, std::ios::binary);
    if (!in) {
      err = fmt::format("Cannot open QUIP model file {}: {}", model_file, utils::getsyserror());
    } else {
      std::stringstream buffer;
      buffer << in.rdbuf();
      const std::string text = buffer.str();
      if (text.find("<GAP_params") == std::string::npos) {
        err = fmt::format("{} is not a GAP model file (no <GAP_params> element); give the xml "
                          "written by gap_fit",
                          model_file);
      } else {
        std::set<int> zs;
        bool any_species = false;
        size_t pos = 0;
        int ndesc = 0;
        while ((pos = text.find("<descriptor>", pos)) != std::string::npos) {
          const size_t start = pos + strlen("<descriptor>");
          const size_t stop = text.find("</descriptor>", start);
          if (stop == std::string::npos) break;
          scan_descriptor(text.substr(start, stop - start), zs, any_species);
          ndesc++;
          pos = stop;
        }
        if (ndesc == 0)
          err = fmt::format("GAP model file {} holds no <descriptor> elements; is it complete?",
                            model_file);
        any = any_species ? 1 : 0;
        species.assign(zs.begin(), zs.end());
        file_stat(model_file, stamp[0], stamp[1]);
      }
    }
  }
  int nerr = (int) err.size();
  MPI_Bcast(&nerr, 1, MPI_INT, 0, world);
  if (nerr > 0) {
    err.resize(nerr);
    MPI_Bcast(&err[0], nerr, MPI_CHAR, 0, world);
    error->all(FLERR, err);
  }
  int nspecies = (int) species.size();
  MPI_Bcast(&nspecies, 1, MPI_INT, 0, world);
  species.resize(nspecies);
  if (nspecies > 0) MPI_Bcast(species.data(), nspecies, MPI_INT, 0, world);
  MPI_Bcast(&any, 1, MPI_INT, 0, world);
  MPI_Bcast(stamp, 2, MPI_LONG_LONG, 0, world);
  model_species = any ? std::vector<int>() : species;
  file_size = stamp[0];
  file_mtime = stamp[1];
}

/* ----------------------------------------------------------------------
   hand this instance's model to QUIP (two calls: size of the handle, then
   the handle itself)
------------------------------------------------------------------------- */

void PairQUIP::load_model()
{
  const int nfile = (int) model_file.size();
  const int ninit = (int) init_string.size();
  int nhandle = 0;
  int dummy = 0;
  double cut = 0.0;
  if (__system_module_MOD_get_quippy_running()) quippy_seen = true;
  const bool ok = call_quip([&] {
    quip_lammps_potential_initialise(&dummy, &nhandle, &cut, model_file.c_str(), &nfile,
                                     init_string.c_str(), &ninit);
    // quippy set up libAtoms with system_initialise + verbosity_push(0) and undoes
    // both at exit; the first call above re-initialised libAtoms with a one-entry
    // stack: push again, or the interpreter exits with "stack_value on empty stack"
    if (quippy_seen) {
      const int normal = 0;
      __system_module_MOD_verbosity_push(&normal);
    }
    if (nhandle > 0) {
      quip_handle.assign(nhandle, 0);
      quip_lammps_potential_initialise(quip_handle.data(), &nhandle, &cut, model_file.c_str(),
                                       &nfile, init_string.c_str(), &ninit);
    }
  });
  if (!ok) {
    loaded_instance = 0;
    error->all(FLERR, "QUIP could not load model {} with '{}': {}", model_file, init_string,
               abort_message);
  }
  if (nhandle <= 0)
    error->all(FLERR, "QUIP returned no potential handle for model {} with '{}'", model_file,
               init_string);
  if (!(cut > 0.0))
    error->all(FLERR, "QUIP model {} reports a cutoff of {} Angstrom; expected > 0", model_file,
               cut);
  cutoff = cut;
  loaded_instance = instance_id;
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
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "Pair style quip requires 'units metal' (QUIP models use eV and Angstrom)");
  if (force->newton_pair != 1)
    error->all(FLERR, "Pair style quip requires newton pair on (QUIP returns forces on ghost "
                      "atoms)");
  if (atom->tag_enable == 0) error->all(FLERR, "Pair style quip requires atom IDs");
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
      if (dx * dx + dy * dy + dz * dz <= cutoffsq) {
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

  const bool ok = call_quip([&] {
    quip_lammps_wrapper(&nlocal, &nghost, atomic_numbers.data(), tag_copy.data(), &inum,
                        &sum_num_neigh, ilist_copy.data(), num_neigh.data(), neigh.data(),
                        lattice, quip_handle.data(), &nhandle, xflat ? xflat : xdummy, &energy,
                        local_e.data(), vir, local_virial.data(), quip_force.data());
  });
  if (!ok) error->one(FLERR, "QUIP failed to evaluate model {}: {}", model_file, abort_message);

  double **f = atom->f;
  for (int i = 0; i < ntotal; i++) {
    f[i][0] += quip_force[3 * i + 0];
    f[i][1] += quip_force[3 * i + 1];
    f[i][2] += quip_force[3 * i + 2];
  }
  if (eflag_global) eng_vdwl += energy;
  if (eflag_atom)
    for (int i = 0; i < ntotal; i++) eatom[i] += local_e[i];
  // Fortran (3,3): element (a,b) at a + 3b
  if (vflag_global) {
    virial[0] += vir[0];
    virial[1] += vir[4];
    virial[2] += vir[8];
    virial[3] += 0.5 * (vir[1] + vir[3]);
    virial[4] += 0.5 * (vir[2] + vir[6]);
    virial[5] += 0.5 * (vir[5] + vir[7]);
  }
  if (vflag_atom)
    for (int i = 0; i < ntotal; i++) {
      const double *w = &local_virial[9 * (size_t) i];
      vatom[i][0] += w[0];
      vatom[i][1] += w[4];
      vatom[i][2] += w[8];
      vatom[i][3] += 0.5 * (w[1] + w[3]);
      vatom[i][4] += 0.5 * (w[2] + w[6]);
      vatom[i][5] += 0.5 * (w[5] + w[7]);
    }
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
