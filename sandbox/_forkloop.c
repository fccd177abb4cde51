/* The zygote's serving loop in C: read a job, fork, apply the per-job layers, supervise, reply.
 *
 * Why C (hand-written, no library does this): after every fork the kernel write-protects the
 * zygote's pages, so each page the zygote writes before the next fork costs a copy-on-write fault
 * (~2 us on these machines). The same loop in Python writes ~150 pages per job (frames, refcounts,
 * allocator pools); this one ~9, and runs no Python in the zygote after start-up, so every child
 * still forks from the same pristine interpreter. Measured on the bench's jobs with one worker:
 * the zygote's CPU per job fell from 0.57 to 0.27 ms, the whole job's by ~20%.
 *
 * It mirrors zygote.py's Python loop (the fallback when this module is not built) step for step;
 * the wire format is protocol.py's. Python returns from serve() only in a job's child, with every
 * per-job layer in force: the child then decodes the job and runs it (zygote.run_job_in_child).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef SYS_getdents64
#define SYS_getdents64 217
#endif
#ifndef SECCOMP_MODE_FILTER
#define SECCOMP_MODE_FILTER 2
#endif

/* protocol.py: JOB_HEAD ">qdB" (id, timeout, flags), REPLY_HEAD ">qiBdIII", the reply flags */
#define JOB_HEAD_SIZE 17
#define REPLY_HEAD_SIZE 33
#define JOB_CAPTURE 1
#define TIMED_OUT 1
#define CUT 2
#define RETIRE 4
#define STDOUT_TRUNCATED 8
#define STDERR_TRUNCATED 16
#define PIPE_READ (1 << 16)
#define MAX_RLIMITS 16

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    double default_timeout;
    size_t max_output, max_result;
    int devnull, proc_fd, ruleset_fd, scratch_fd;
    unsigned long seccomp_prog;
    int n_rlimits;
    int rl_resource[MAX_RLIMITS];
    rlim_t rl_value[MAX_RLIMITS];
    PyObject *clean; /* zygote.clean_scratch: called only when the scratch needs more than a reset */
} config_t;

static int reserve(buf_t *b, size_t n) {
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void wipe(buf_t *b, size_t n) {
    if (b->p != NULL)
        memset(b->p, 0, n < b->cap ? n : b->cap);
}

/* Give a large buffer back after the job that needed it: the zygote's memory is every child's (its
 * pages are copied into each fork's page tables and count against each job's address-space limit). */
static void shrink(buf_t *b) {
    if (b->cap <= (1 << 20))
        return;
    free(b->p);
    b->p = NULL;
    b->cap = b->len = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t load_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void store_be(unsigned char *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* 1: n bytes read; 0: end of file; -1: error */
static int read_exact(int fd, char *p, size_t n) {
    while (n) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got == 0 ? 0 : -1;
        p += got;
        n -= (size_t)got;
    }
    return 1;
}

static int writev_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        ssize_t put = writev(fd, iov, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return -1;
        while (n > 0 && (size_t)put >= iov->iov_len) {
            put -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + put;
            iov->iov_len -= (size_t)put;
        }
    }
    return 0;
}

static int close_from(unsigned int lo, unsigned int hi) {
    if (lo > hi)
        return 0;
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL)
        return -1;
    for (unsigned int fd = lo; fd <= hi && fd < 65536; fd++)
        close(fd);
    return 0;
}

/* The child's layers (zygote.Zygote.child). NULL on success, else the step that failed. */
static const char *child_layers(const config_t *c, int w, int out_fd, int err_fd, rlim_t cpu) {
    int capture = out_fd >= 0;
    pid_t zygote = getppid();
    if (setsid() < 0)
        return "setsid";
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return "prctl(PDEATHSIG)";
    if (getppid() != zygote)
        _exit(71);
    if (c->proc_fd >= 0) { /* first in line for the OOM killer */
        int fd = openat(c->proc_fd, "self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return "oom_score_adj";
        ssize_t put = write(fd, "1000", 4);
        close(fd);
        if (put != 4)
            return "oom_score_adj";
    }
    if (c->ruleset_fd >= 0 && syscall(SYS_landlock_restrict_self, c->ruleset_fd, 0) < 0)
        return "landlock_restrict_self";
    if (dup2(c->devnull, 0) < 0 || dup2(capture ? out_fd : c->devnull, 1) < 0 ||
        dup2(capture ? err_fd : c->devnull, 2) < 0)
        return "dup2";
    if (close_from(3, (unsigned int)w - 1) < 0 || close_from((unsigned int)w + 1, ~0U) < 0)
        return "close_range";
    for (int i = 0; i < c->n_rlimits; i++) {
        struct rlimit rl = {c->rl_value[i], c->rl_value[i]};
        if (setrlimit(c->rl_resource[i], &rl) < 0)
            return "setrlimit";
    }
    struct rlimit rl = {cpu, cpu};
    if (setrlimit(RLIMIT_CPU, &rl) < 0)
        return "setrlimit(CPU)";
    if (c->seccomp_prog && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c->seccomp_prog, 0, 0) < 0)
        return "seccomp";
    return NULL;
}

static void child_setup_failed(int w, const char *what) {
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "{\"status\": \"error\", \"values\": [], \"error\": \"SandboxSetupError: %s: %s\"}", what,
                     strerror(errno));
    if (n > 0 && (size_t)n < sizeof msg && write(w, msg, (size_t)n) < 0) {
        /* nothing more to say: the pool reports a job that ended without a result */
    }
    _exit(70);
}

/* Does the scratch need more than fchmod + futimens: any entry, or any extended attribute? */
static int scratch_is_clean(int dirfd) {
    char ents[4096];
    if (lseek(dirfd, 0, SEEK_SET) < 0)
        return 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dirfd, ents, sizeof ents);
        if (n < 0)
            return 0;
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name */
            unsigned short reclen;
            memcpy(&reclen, ents + off + 16, sizeof reclen);
            const char *name = ents + off + 19;
            if (!(name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))))
                return 0;
            off += reclen;
        }
    }
    char names[1];
    ssize_t x = flistxattr(dirfd, names, 0);
    return x == 0;
}

/* zygote.clean_scratch through the fast path; 1 when the scratch is ready for the next job. */
static int clean_scratch(const config_t *c) {
    if (c->scratch_fd >= 0 && scratch_is_clean(c->scratch_fd)) {
        static const struct timespec epoch[2] = {{0, 0}, {0, 0}};
        return fchmod(c->scratch_fd, 0700) == 0 && futimens(c->scratch_fd, epoch) == 0;
    }
    PyObject *ok = PyObject_CallNoArgs(c->clean); /* rare: a job left something behind */
    int clean = ok != NULL && PyObject_IsTrue(ok) == 1;
    Py_XDECREF(ok);
    PyErr_Clear();
    return clean;
}

static void read_capture(int fd, size_t cap, buf_t *out, int truncated_flag, int *flags) {
    struct stat st;
    out->len = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && lseek(fd, 0, SEEK_SET) == 0) {
        size_t want = (size_t)st.st_size < cap ? (size_t)st.st_size : cap;
        if (reserve(out, want) == 0) {
            while (out->len < want) {
                ssize_t got = read(fd, out->p + out->len, want - out->len);
                if (got < 0 && errno == EINTR)
                    continue;
                if (got <= 0)
                    break;
                out->len += (size_t)got;
            }
        }
        if ((size_t)st.st_size > cap)
            *flags |= truncated_flag;
    }
    close(fd);
}

static PyObject *serve(PyObject *self, PyObject *args) {
    config_t c;
    PyObject *rlimits;
    memset(&c, 0, sizeof c);
    if (!PyArg_ParseTuple(args, "dnniiiikOO", &c.default_timeout, &c.max_output, &c.max_result, &c.devnull,
                          &c.proc_fd, &c.ruleset_fd, &c.scratch_fd, &c.seccomp_prog, &rlimits, &c.clean))
        return NULL;
    if (!PyCallable_Check(c.clean)) {
        PyErr_SetString(PyExc_TypeError, "clean must be callable");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(rlimits, "rlimits must be a sequence of (resource, value) pairs");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_RLIMITS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many rlimits");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long resource, value;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "LL", &resource, &value)) {
            Py_DECREF(seq);
            return NULL;
        }
        if (resource == RLIMIT_CPU)
            continue; /* per job, from its timeout */
        c.rl_resource[c.n_rlimits] = (int)resource;
        c.rl_value[c.n_rlimits++] = value < 0 ? RLIM_INFINITY : (rlim_t)value;
    }
    Py_DECREF(seq);
    Py_INCREF(c.clean);

    /* Reused across jobs: after the first few jobs the loop allocates nothing. */
    static buf_t job, result, out[2];
    unsigned char lenb[4], head[4 + REPLY_HEAD_SIZE];
    for (;;) {
        int r = read_exact(0, (char *)lenb, 4);
        if (r <= 0)
            _exit(0); /* the pool closed our stdin (or is gone) */
        size_t size = ((size_t)lenb[0] << 24) | ((size_t)lenb[1] << 16) | ((size_t)lenb[2] << 8) | lenb[3];
        if (size < JOB_HEAD_SIZE || reserve(&job, size) < 0 || read_exact(0, job.p, size) <= 0)
            _exit(3);
        const unsigned char *h = (const unsigned char *)job.p;
        int64_t job_id = (int64_t)load_be64(h);
        uint64_t tbits = load_be64(h + 8);
        double timeout;
        memcpy(&timeout, &tbits, sizeof timeout);
        if (!(timeout > 0))
            timeout = c.default_timeout;
        if (timeout > 1e7)
            timeout = 1e7;
        int capture = (h[16] & JOB_CAPTURE) != 0;
        int out_fd = -1, err_fd = -1;
        if (capture) {
            out_fd = memfd_create("stdout", MFD_CLOEXEC);
            err_fd = memfd_create("stderr", MFD_CLOEXEC);
            if (out_fd < 0 || err_fd < 0)
                _exit(5);
        }
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
            _exit(5);
        double start = now();
        PyOS_BeforeFork();
        pid_t pid = fork();
        if (pid == 0) {
            PyOS_AfterFork_Child();
            close(pfd[0]);
            const char *failed = child_layers(&c, pfd[1], out_fd, err_fd, (rlim_t)timeout + 1);
            if (failed != NULL)
                child_setup_failed(pfd[1], failed);
            return Py_BuildValue("(y#iO)", job.p + JOB_HEAD_SIZE, (Py_ssize_t)(size - JOB_HEAD_SIZE), pfd[1],
                                 capture ? Py_True : Py_False);
        }
        PyOS_AfterFork_Parent();
        if (pid < 0)
            _exit(6); /* the pool reports the job killed and starts a fresh worker */
        close(pfd[1]);

        /* supervise: collect the result; SIGKILL at the deadline or on overflow (Zygote.supervise) */
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
            kill(pid, SIGKILL);
            _exit(7);
        }
        struct pollfd fds[3] = {{pfd[0], POLLIN, 0}, {pidfd, POLLIN, 0}, {0, 0, 0}};
        int timed_out = 0, cut = 0, exited = 0, r_done = 0;
        double deadline = start + timeout;
        result.len = 0;
        while (!(exited || timed_out || cut)) {
            double remaining = deadline - now();
            if (remaining <= 0) {
                timed_out = 1;
                break;
            }
            double ms = ceil(remaining * 1000);
            int k = poll(fds, 3, ms > 2e9 ? 2000000000 : (int)ms);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                _exit(8);
            if (fds[2].revents) { /* hang-up on stdin: the pool is gone */
                kill(pid, SIGKILL);
                _exit(0);
            }
            if (fds[1].revents)
                exited = 1;
            if (fds[0].revents) {
                if (reserve(&result, result.len + PIPE_READ) < 0)
                    _exit(4);
                ssize_t got = read(pfd[0], result.p + result.len, PIPE_READ);
                if (got < 0 && errno == EINTR)
                    continue;
                if (got <= 0) {
                    fds[0].fd = -1;
                    r_done = 1;
                } else {
                    result.len += (size_t)got;
                    cut = result.len > c.max_result;
                }
            }
        }
        if (timed_out || cut)
            kill(pid, SIGKILL);
        killpg(pid, SIGKILL); /* the job's whole process group (only the job itself under seccomp) */
        if (exited && !r_done) { /* what is left in the pipe is all there is */
            fcntl(pfd[0], F_SETFL, O_NONBLOCK);
            while (result.len <= c.max_result && reserve(&result, result.len + PIPE_READ) == 0) {
                ssize_t got = read(pfd[0], result.p + result.len, PIPE_READ);
                if (got <= 0)
                    break;
                result.len += (size_t)got;
            }
        }
        close(pidfd);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        double duration = now() - start;
        close(pfd[0]);

        int flags = (timed_out ? TIMED_OUT : 0) | (cut ? CUT : 0);
        out[0].len = out[1].len = 0;
        if (capture) {
            read_capture(out_fd, c.max_output, &out[0], STDOUT_TRUNCATED, &flags);
            read_capture(err_fd, c.max_output, &out[1], STDERR_TRUNCATED, &flags);
        }
        if (!clean_scratch(&c))
            flags |= RETIRE; /* the pool replaces this worker: a fresh one has a fresh scratch */

        /* reply: LENGTH, REPLY_HEAD (id, wait status, flags, duration, three lengths), the bytes */
        size_t body = REPLY_HEAD_SIZE + result.len + out[0].len + out[1].len;
        uint64_t dbits;
        memcpy(&dbits, &duration, sizeof dbits);
        store_be(head, body, 4);
        store_be(head + 4, (uint64_t)job_id, 8);
        store_be(head + 12, (uint32_t)status, 4);
        head[16] = (unsigned char)flags;
        store_be(head + 17, dbits, 8);
        store_be(head + 25, result.len, 4);
        store_be(head + 29, out[0].len, 4);
        store_be(head + 33, out[1].len, 4);
        struct iovec iov[4] = {{head, sizeof head}, {result.p, result.len}, {out[0].p, out[0].len},
                               {out[1].p, out[1].len}};
        if (writev_all(1, iov, 4) < 0)
            _exit(0); /* the pool is gone */
        /* Nothing of this job may reach the next one: every child inherits the zygote's memory, and
         * a job can read its own (ctypes.string_at). */
        wipe(&job, size);
        wipe(&result, result.len);
        wipe(&out[0], out[0].len);
        wipe(&out[1], out[1].len);
        shrink(&job);
        shrink(&result);
        shrink(&out[0]);
        shrink(&out[1]);
    }
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(default_timeout, max_output, max_result, devnull, proc_fd, ruleset_fd, scratch_fd, seccomp_prog, "
     "rlimits, clean) -> (job_json, result_fd, capture)\n\n"
     "Serve jobs forever; returns only in a job's child, with its layers applied."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_forkloop", NULL, -1, methods};

PyMODINIT_FUNC PyInit__forkloop(void) { return PyModule_Create(&module); }
