/*
 * powerhil-sim - runs an Arduino Uno firmware ELF in simavr with a simulated INA219.
 *
 *   powerhil-sim [options] FIRMWARE.elf
 *
 * The ATmega328P runs at 16 MHz, throttled to the wall clock (or, with --fast, as fast as it
 * can up to the simulated time its host grants it). UART0 is bridged to a
 * pseudo-terminal whose path is the first line on stdout ("pty /dev/pts/N"). An
 * INA219 answers at I2C address 0x40. stdin takes control lines and stdout answers
 * each with one line; see firmware/sim/README.md for the protocol.
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3): build it locally, do not
 * distribute the binary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <avr_eeprom.h>
#include <sim_avr.h>
#include <sim_elf.h>

#include "ina219.h"
#include "pty_bridge.h"
#include "twi_timing.h"

#define PROG "powerhil-sim"
#define MCU_NAME "atmega328p"
#define MCU_HZ 16000000u
#define BROWNOUT_VOLTS 2.7
#define EM_AVR_MACHINE 83
#define SLICE_S 0.001   /* simulated time may lead the wall clock by this much */
#define CATCHUP_S 0.020 /* at most this much simulated time between two I/O checks */
#define LINE_MAX_CTL 512
#define TX_MARGIN 16    /* --fast: the simulation pauses while the pty's tx ring has less room */
#define CLOCK_PAGE 4096

enum { HALT_NONE = 0, HALT_DONE, HALT_CRASHED };

static struct {
	/* configuration */
	const char *elf_path;
	const char *eeprom_path;
	int wait_open;
	int reset_on_open;
	int fast_fd; /* --fast: the host's lease channel, else -1 */

	/* the board */
	elf_firmware_t fw;
	avr_t *avr;
	ina219_t ina;
	pty_bridge_t pty;

	/* simulated time: cycles = base + (avr->cycle - origin) while the MCU runs, else base */
	uint64_t base, origin;
	struct timespec t0;

	/* --fast: the simulated cycle count shared with the host, and what it allows */
	uint64_t *clock_page;
	uint64_t lease;    /* cycles the host lets the simulation reach */
	uint64_t notified; /* the lease the host was last told the simulation stopped at */
	double waited;     /* wall seconds spent waiting for a lease or for the client to read */

	/* MCU state */
	int powered;  /* has supply (always, unless it shares a rail below brown-out) */
	int waiting;  /* held in reset until the first client opens the pty */
	int halted;   /* HALT_*: the firmware stopped or crashed */
	uint64_t starts;

	/* the monitored rail */
	double volts, amps, shunt;
	int supply; /* 0: pulled */
	int shared; /* the MCU is powered from the monitored rail */
	int sensor; /* the INA219 is on the bus */

	/* control channel */
	FILE *ctl;
	char line[LINE_MAX_CTL];
	size_t line_len;
	int line_overflow;
	int stdin_open;
	int quit;
} S;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

/* simavr's messages: errors and warnings to stderr, the rest dropped. */
static void sim_logger(avr_t *avr, const int level, const char *fmt, va_list ap)
{
	(void)avr;
	if (level > LOG_WARNING)
		return;
	fputs("simavr: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* The AVR sleeps in simulated time only: the main loop does the real waiting. */
static void sim_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
	(void)avr;
	(void)how_long;
}

static int running(void)
{
	return S.powered && !S.waiting && !S.halted;
}

static uint64_t sim_now(void)
{
	return running() ? S.base + (S.avr->cycle - S.origin) : S.base;
}

static uint64_t ina_clock(void *ctx)
{
	(void)ctx;
	return sim_now();
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - S.t0.tv_sec) + (double)(ts.tv_nsec - S.t0.tv_nsec) * 1e-9;
}

/* ---- EEPROM persistence ------------------------------------------------------ */

static uint32_t eeprom_size(void)
{
	return S.avr->e2end + 1;
}

static void eeprom_load(void)
{
	FILE *f = fopen(S.eeprom_path, "rb");
	if (!f) {
		if (errno == ENOENT)
			return; /* a new board: erased EEPROM (or the ELF's .eeprom) */
		die(2, "cannot read EEPROM file '%s': %s", S.eeprom_path, strerror(errno));
	}
	uint8_t buf[4096];
	size_t n = fread(buf, 1, sizeof(buf), f);
	int bad = ferror(f);
	fclose(f);
	if (bad)
		die(2, "cannot read EEPROM file '%s'", S.eeprom_path);
	if (n != eeprom_size())
		die(2, "EEPROM file '%s' holds %zu bytes, the %s has %u", S.eeprom_path, n, MCU_NAME,
		    eeprom_size());
	avr_eeprom_desc_t d = {.ee = buf, .offset = 0, .size = (uint32_t)n};
	avr_ioctl(S.avr, AVR_IOCTL_EEPROM_SET, &d);
}

static void eeprom_save(void)
{
	if (!S.eeprom_path || !S.avr)
		return;
	uint8_t buf[4096];
	avr_eeprom_desc_t d = {.ee = buf, .offset = 0, .size = eeprom_size()};
	/* simavr 1.6 answers -1 on success as well: only -2 means a bad request */
	if (avr_ioctl(S.avr, AVR_IOCTL_EEPROM_GET, &d) == -2)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", S.eeprom_path);
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		fprintf(stderr, PROG ": cannot write EEPROM file '%s': %s\n", tmp, strerror(errno));
		return;
	}
	size_t n = fwrite(buf, 1, eeprom_size(), f);
	if (fclose(f) != 0 || n != eeprom_size() || rename(tmp, S.eeprom_path) != 0) {
		fprintf(stderr, PROG ": cannot write EEPROM file '%s': %s\n", S.eeprom_path,
			strerror(errno));
		unlink(tmp);
	}
}

/* ---- MCU power and reset ----------------------------------------------------- */

/* Takes the time under the current state: call before the MCU starts or stops running. */
static void freeze(void)
{
	S.base = sim_now();
	S.origin = S.avr->cycle;
}

/* A new boot: reset pin, power-up after brown-out, or the first client. */
static void mcu_boot(void)
{
	freeze();
	eeprom_save();
	avr_reset(S.avr);
	S.avr->state = cpu_Running;
	S.origin = S.avr->cycle;
	S.halted = HALT_NONE;
	S.starts++;
	pty_bridge_mcu_reset(&S.pty);
}

static void mcu_halt(int why)
{
	freeze();
	S.halted = why;
}

/* Applies the rail to the INA219's inputs and the MCU's brown-out detector. */
static void apply_rail(void)
{
	double rail = S.supply ? S.volts : 0.0;
	ina219_set_inputs(&S.ina, rail, S.supply ? S.amps : 0.0, S.shunt);
	int powered = !S.shared || rail >= BROWNOUT_VOLTS;
	if (powered != S.powered) {
		freeze();
		S.powered = powered;
		if (!powered) {
			pty_bridge_drop_rx(&S.pty);
			eeprom_save();
		} else {
			/* the INA219 hangs off the MCU's 5 V: it powers up with it */
			ina219_power_on(&S.ina);
			if (!S.waiting)
				mcu_boot();
		}
	}
	S.ina.present = S.sensor && S.powered;
}

static void client_opened(void)
{
	if (S.waiting) {
		freeze();
		S.waiting = 0;
		if (S.powered)
			mcu_boot();
	} else if (S.reset_on_open && S.powered) {
		mcu_boot();
	}
}

/* ---- running ------------------------------------------------------------------ */

/* --fast: the pty's tx ring is nearly full and the client has not taken more. The simulation
 * then waits for the client rather than dropping the firmware's bytes: the UART's bytes keep
 * their simulated times, however slowly the host reads. */
static int tx_backlogged(void)
{
	if (S.fast_fd < 0 || !S.pty.connected || PTY_RING - S.pty.tx.len >= TX_MARGIN)
		return 0;
	pty_bridge_flush(&S.pty);
	return PTY_RING - S.pty.tx.len < TX_MARGIN;
}

/* Runs the simulation up to the cycle `target` (with --fast, less while tx_backlogged()). */
static void advance(uint64_t target)
{
	avr_t *avr = S.avr;
	while (running()) {
		uint64_t now = sim_now();
		if (now >= target)
			return;
		uint64_t stop = target;
		if (pty_bridge_rx_pending(&S.pty)) {
			if (pty_bridge_feed(&S.pty, now))
				continue;
			uint64_t next = S.pty.xoff ? now + 1000 : S.pty.rx_due;
			if (next < stop)
				stop = next;
		}
		uint64_t stop_cycle = S.origin + (stop - S.base);
		while (avr->cycle < stop_cycle) {
			/* one avr_run() moves at most one byte into the ring */
			if (PTY_RING - S.pty.tx.len < TX_MARGIN && tx_backlogged())
				return;
			avr->run(avr); /* what avr_run() does, without its call: this is the hot loop */
			int state = avr->state;
			if (state == cpu_Done) {
				mcu_halt(HALT_DONE);
				break;
			}
			if (state == cpu_Crashed || state == cpu_Stopped) {
				mcu_halt(HALT_CRASHED);
				break;
			}
		}
	}
	if (!running()) {
		if (S.base < target)
			S.base = target;
		if (S.pty.rx.len)
			pty_bridge_drop_rx(&S.pty);
	}
}

/* ---- --fast: simulated time shared with the host -------------------------------- */

/* The host reads the simulated cycle count from the shared page, with no system call. */
static void publish_time(void)
{
	if (S.clock_page)
		__atomic_store_n(S.clock_page, sim_now(), __ATOMIC_RELEASE);
}

/* Takes every lease the host sent (leases only grow). Returns 0 once the host hung up. */
static int read_leases(void)
{
	for (;;) {
		uint64_t v;
		ssize_t n = recv(S.fast_fd, &v, sizeof(v), MSG_DONTWAIT);
		if (n == (ssize_t)sizeof(v)) {
			if (v > S.lease)
				S.lease = v;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			return 1;
		} else if (n <= 0) {
			return 0;
		} /* a packet of another size is not a lease: ignored */
	}
}

/* Tells the host, once per lease, that the simulation stands at it. Returns 0 if the socket
 * was full (tried again on the next pass). */
static int notify_stalled(void)
{
	if (S.notified == S.lease)
		return 1;
	uint64_t v = sim_now();
	if (send(S.fast_fd, &v, sizeof(v), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(v))
		return 0;
	S.notified = S.lease;
	return 1;
}

/* A page holding the cycle count, sent to the host as a memfd over the lease socket. */
static void share_clock(void)
{
	int type = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(S.fast_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET)
		die(2, "--fast %d: not a Unix SOCK_SEQPACKET socket", S.fast_fd);
	fcntl(S.fast_fd, F_SETFD, FD_CLOEXEC);
	int fd = memfd_create("powerhil-sim-clock", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, CLOCK_PAGE) != 0)
		die(1, "cannot create the shared clock: %s", strerror(errno));
	void *page = mmap(NULL, CLOCK_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED)
		die(1, "cannot map the shared clock: %s", strerror(errno));
	S.clock_page = page;
	publish_time();
	uint64_t now = sim_now();
	struct iovec iov = {.iov_base = &now, .iov_len = sizeof(now)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(S.fast_fd, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof(now))
		die(2, "--fast %d: cannot send the shared clock: %s", S.fast_fd, strerror(errno));
	close(fd); /* the mapping stays */
}

/* ---- control channel ---------------------------------------------------------- */

static const char *mcu_state_name(void)
{
	if (S.waiting)
		return "wait";
	if (!S.powered)
		return "off";
	if (S.halted == HALT_DONE)
		return "done";
	if (S.halted == HALT_CRASHED)
		return "crashed";
	return "run";
}

static void answer(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(S.ctl, fmt, ap);
	va_end(ap);
	fputc('\n', S.ctl);
	if (fflush(S.ctl) != 0) /* nobody reads our answers any more */
		S.quit = 1;
}

static void answer_state(void)
{
	ina219_t *ina = &S.ina;
	uint16_t r[INA219_REG_COUNT];
	for (uint8_t i = 0; i < INA219_REG_COUNT; i++)
		r[i] = ina219_peek(ina, i);
	double rail = S.supply ? S.volts : 0.0;
	answer("ok t=%.6f mcu=%s starts=%llu volts=%.9g amps=%.9g shunt=%.9g supply=%s shared=%d "
	       "sensor=%s rail=%.9g over_max=%d pty=%s r_config=%u r_shunt=%u r_bus=%u r_power=%u "
	       "r_current=%u r_cal=%u conversions=%llu rx=%llu tx=%llu rx_dropped=%llu tx_dropped=%llu",
	       (double)sim_now() / MCU_HZ, mcu_state_name(), (unsigned long long)S.starts, S.volts,
	       S.amps, S.shunt, S.supply ? "on" : "off", S.shared, S.sensor ? "on" : "off", rail,
	       rail > INA219_ABS_MAX_VOLTS, S.pty.connected ? "open" : "closed",
	       r[INA219_REG_CONFIG], r[INA219_REG_SHUNT], r[INA219_REG_BUS], r[INA219_REG_POWER],
	       r[INA219_REG_CURRENT], r[INA219_REG_CAL],
	       (unsigned long long)ina->conversions, (unsigned long long)S.pty.rx_bytes,
	       (unsigned long long)S.pty.tx_bytes, (unsigned long long)S.pty.rx_dropped,
	       (unsigned long long)S.pty.tx_dropped);
}

static int parse_number(const char *s, double lo, double hi, double *out, const char **err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v)) {
		*err = "arg";
		return -1;
	}
	if (v < lo || v > hi) {
		*err = "range";
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_switch(const char *s, int *out, const char **err)
{
	if (!strcmp(s, "on") || !strcmp(s, "1")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(s, "off") || !strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	*err = "arg";
	return -1;
}

/* set key=value ...: all values are checked before any is applied. */
static void cmd_set(char **argv, int argc)
{
	double volts = S.volts, amps = S.amps, shunt = S.shunt;
	int supply = S.supply, shared = S.shared, sensor = S.sensor;
	if (argc < 2) {
		answer("err arg set needs key=value");
		return;
	}
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			answer("err arg %s", argv[i]);
			return;
		}
		*eq = 0;
		const char *key = argv[i], *val = eq + 1, *err = NULL;
		int bad;
		if (!strcmp(key, "volts"))
			bad = parse_number(val, 0.0, 40.0, &volts, &err);
		else if (!strcmp(key, "amps"))
			bad = parse_number(val, -100.0, 100.0, &amps, &err);
		else if (!strcmp(key, "shunt"))
			bad = parse_number(val, 1e-6, 1000.0, &shunt, &err);
		else if (!strcmp(key, "supply"))
			bad = parse_switch(val, &supply, &err);
		else if (!strcmp(key, "shared"))
			bad = parse_switch(val, &shared, &err);
		else if (!strcmp(key, "sensor"))
			bad = parse_switch(val, &sensor, &err);
		else {
			answer("err arg unknown key %s", key);
			return;
		}
		if (bad) {
			answer("err %s %s=%s", err, key, val);
			return;
		}
	}
	S.volts = volts;
	S.amps = amps;
	S.shunt = shunt;
	S.supply = supply;
	S.shared = shared;
	S.sensor = sensor;
	apply_rail();
	answer_state();
}

static void command(char *line)
{
	char *argv[16];
	int argc = 0;
	for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (argc == 16) {
			answer("err arg too many words");
			return;
		}
		argv[argc++] = tok;
	}
	if (!argc || argv[0][0] == '#')
		return;
	/* a command sees the pty as it is when the command arrives */
	if (pty_bridge_check(&S.pty))
		client_opened();
	const char *cmd = argv[0];
	if (!strcmp(cmd, "set")) {
		cmd_set(argv, argc);
	} else if (argc > 1) {
		answer("err arg %s takes no arguments", cmd);
	} else if (!strcmp(cmd, "get")) {
		answer_state();
	} else if (!strcmp(cmd, "reset")) {
		if (S.waiting)
			answer("err state the MCU waits for a client to open the pty");
		else if (!S.powered)
			answer("err state the MCU has no power");
		else {
			mcu_boot();
			answer_state();
		}
	} else if (!strcmp(cmd, "sensor-cycle")) {
		if (!S.powered)
			answer("err state the INA219 has no power");
		else {
			/* its own supply drops and returns: power-on registers, conversions anew */
			ina219_power_on(&S.ina);
			answer_state();
		}
	} else if (!strcmp(cmd, "time")) {
		double sim = (double)sim_now() / MCU_HZ, wall = wall_now();
		answer("ok sim=%.6f wall=%.6f ratio=%.6f waited=%.6f", sim, wall,
		       wall > 0 ? sim / wall : 1.0, S.waited);
	} else if (!strcmp(cmd, "quit")) {
		answer("ok bye");
		S.quit = 1;
	} else if (!strcmp(cmd, "help")) {
		answer("ok commands=get,set,reset,sensor-cycle,time,quit,help "
		       "set_keys=volts,amps,shunt,supply,shared,sensor");
	} else {
		answer("err unknown %s", cmd);
	}
}

static void read_control(void)
{
	char buf[1024];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (S.line_len && !S.line_overflow) { /* a last line without its newline */
			S.line[S.line_len] = 0;
			S.line_len = 0;
			command(S.line);
		}
		S.stdin_open = 0;
		S.quit = 1;
		return;
	}
	for (ssize_t i = 0; i < n && !S.quit; i++) {
		char c = buf[i];
		if (c == '\n') {
			if (S.line_overflow)
				answer("err arg line longer than %d bytes", LINE_MAX_CTL - 1);
			else {
				if (S.line_len && S.line[S.line_len - 1] == '\r')
					S.line_len--;
				S.line[S.line_len] = 0;
				command(S.line);
			}
			S.line_len = 0;
			S.line_overflow = 0;
		} else if (S.line_len < LINE_MAX_CTL - 1) {
			S.line[S.line_len++] = c;
		} else {
			S.line_overflow = 1;
		}
	}
}

/* ---- setup ------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [options] FIRMWARE.elf\n"
		"Runs an Arduino Uno (ATmega328P, 16 MHz) firmware in simavr, in real time\n"
		"(or in the host's virtual time, --fast),\n"
		"with an INA219 at I2C 0x40. Prints \"pty PATH\" (UART0) first, then answers\n"
		"control lines from stdin: get, set key=value..., reset, sensor-cycle, time, quit,\n"
		"help.\n"
		"  --volts V        bus volts of the monitored rail (default 5)\n"
		"  --amps A         load current (default 0)\n"
		"  --shunt OHMS     shunt resistance (default 0.1)\n"
		"  --shared         the MCU is powered from the monitored rail (brown-out %.1f V)\n"
		"  --supply-off     start with the supply pulled\n"
		"  --wait-open      hold the MCU in reset until a client first opens the pty\n"
		"  --reset-on-open  reset the MCU whenever a client opens the pty (Uno DTR)\n"
		"  --eeprom FILE    keep the EEPROM in FILE (loaded if present, saved on reset/exit)\n"
		"  --fast FD        unthrottled, up to the leases the host sends on socket FD\n",
		BROWNOUT_VOLTS);
}

static double option_number(const char *name, const char *s, double lo, double hi)
{
	double v;
	const char *err;
	if (parse_number(s, lo, hi, &v, &err) < 0)
		die(2, "--%s %s: expected a number from %g to %g", name, s, lo, hi);
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { O_VOLTS = 256, O_AMPS, O_SHUNT, O_SHARED, O_SUPPLY_OFF, O_WAIT, O_RESET_OPEN,
	       O_EEPROM, O_FAST, O_HELP };
	static const struct option opts[] = {
		{"volts", required_argument, 0, O_VOLTS},
		{"amps", required_argument, 0, O_AMPS},
		{"shunt", required_argument, 0, O_SHUNT},
		{"shared", no_argument, 0, O_SHARED},
		{"supply-off", no_argument, 0, O_SUPPLY_OFF},
		{"wait-open", no_argument, 0, O_WAIT},
		{"reset-on-open", no_argument, 0, O_RESET_OPEN},
		{"eeprom", required_argument, 0, O_EEPROM},
		{"fast", required_argument, 0, O_FAST},
		{"help", no_argument, 0, O_HELP},
		{0, 0, 0, 0},
	};
	S.volts = 5.0;
	S.amps = 0.0;
	S.shunt = 0.1;
	S.supply = 1;
	S.sensor = 1;
	S.fast_fd = -1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_VOLTS:
			S.volts = option_number("volts", optarg, 0.0, 40.0);
			break;
		case O_AMPS:
			S.amps = option_number("amps", optarg, -100.0, 100.0);
			break;
		case O_SHUNT:
			S.shunt = option_number("shunt", optarg, 1e-6, 1000.0);
			break;
		case O_SHARED:
			S.shared = 1;
			break;
		case O_SUPPLY_OFF:
			S.supply = 0;
			break;
		case O_WAIT:
			S.wait_open = 1;
			break;
		case O_RESET_OPEN:
			S.reset_on_open = 1;
			break;
		case O_EEPROM:
			S.eeprom_path = optarg;
			break;
		case O_FAST:
			S.fast_fd = (int)option_number("fast", optarg, 0, 65535);
			if (S.fast_fd != atoi(optarg) || fcntl(S.fast_fd, F_GETFD) < 0)
				die(2, "--fast %s: expected an open socket's file descriptor", optarg);
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			die(2, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		die(2, "expected one firmware ELF path (see --help)");
	S.elf_path = argv[optind];
}

/* Checks the file is a readable AVR ELF before simavr sees it. */
static void check_elf(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die(2, "cannot read firmware '%s': %s", path, strerror(errno));
	unsigned char h[20];
	ssize_t n = read(fd, h, sizeof(h));
	int e = errno;
	close(fd);
	if (n < 0)
		die(2, "cannot read firmware '%s': %s", path, strerror(e));
	if (n < (ssize_t)sizeof(h) || memcmp(h, "\177ELF", 4) != 0)
		die(2, "firmware '%s' is not an ELF file", path);
	unsigned machine = h[5] == 2 ? (unsigned)(h[18] << 8 | h[19]) : (unsigned)(h[19] << 8 | h[18]);
	if (machine != EM_AVR_MACHINE)
		die(2, "firmware '%s' is not an AVR ELF (machine %u)", path, machine);
}

static void setup_board(void)
{
	check_elf(S.elf_path);
	/* simavr prints some messages with printf: keep stdout for the control channel */
	int ctl_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (ctl_fd < 0 || !(S.ctl = fdopen(ctl_fd, "w")))
		die(1, "cannot set up the control channel: %s", strerror(errno));
	setvbuf(S.ctl, NULL, _IOLBF, 0);
	dup2(STDERR_FILENO, STDOUT_FILENO);
	setvbuf(stdout, NULL, _IOLBF, 0);
	avr_global_logger_set(sim_logger);

	if (elf_read_firmware(S.elf_path, &S.fw) != 0)
		die(2, "cannot load firmware '%s'", S.elf_path);
	if (!S.fw.flash || !S.fw.flashsize)
		die(2, "firmware '%s' has no code", S.elf_path);
	strcpy(S.fw.mmcu, MCU_NAME);
	S.fw.frequency = MCU_HZ;
	S.avr = avr_make_mcu_by_name(MCU_NAME);
	if (!S.avr)
		die(1, "simavr does not know the %s", MCU_NAME);
	if (S.fw.flashsize > S.avr->flashend + 1)
		die(2, "firmware '%s' needs %u bytes of flash, the %s has %u", S.elf_path, S.fw.flashsize,
		    MCU_NAME, S.avr->flashend + 1);
	avr_init(S.avr);
	S.avr->log = LOG_WARNING;
	avr_load_firmware(S.avr, &S.fw);
	S.avr->frequency = MCU_HZ;
	S.avr->sleep = sim_sleep;
	if (S.eeprom_path)
		eeprom_load();

	if (pty_bridge_open(&S.pty) != 0)
		die(1, "cannot open a pseudo-terminal: %s", strerror(errno));
	pty_bridge_attach(&S.pty, S.avr);
	ina219_init(&S.ina, MCU_HZ, ina_clock, NULL);
	ina219_attach(&S.ina, S.avr, 0x40);
	static twi_timing_t twi_timing;
	if (twi_timing_attach(&twi_timing, S.avr) != 0)
		die(1, "simavr's %s has no TWI", MCU_NAME);
	if (S.fast_fd >= 0)
		share_clock();
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);

	sigset_t block, orig;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &orig);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* No PR_SET_PDEATHSIG: it fires when the *thread* that started us ends (trio starts
	 * processes from worker threads that end after 10 s idle). A parent that dies closes our
	 * stdin, and end of stdin ends the runner. */

	setup_board();
	S.stdin_open = 1;
	S.waiting = S.wait_open;
	S.powered = 0;
	S.base = 0;
	S.origin = S.avr->cycle;
	clock_gettime(CLOCK_MONOTONIC, &S.t0);
	ina219_power_on(&S.ina);
	apply_rail(); /* boots the MCU unless it waits or lacks power */

	answer("pty %s", S.pty.path);

	while (!S.quit && !stop_signal) {
		double wall = wall_now();
		uint64_t now = sim_now();
		uint64_t want, cap;
		if (S.fast_fd >= 0) { /* up to the lease, in slices: the host sees output per slice */
			want = S.lease;
			cap = now + (uint64_t)(SLICE_S * MCU_HZ);
		} else {
			want = (uint64_t)((wall + SLICE_S) * MCU_HZ);
			cap = now + (uint64_t)(CATCHUP_S * MCU_HZ);
		}
		if (want > now)
			advance(want < cap ? want : cap);
		publish_time(); /* before the flush: the host never sees a byte before its time */
		if (pty_bridge_check(&S.pty))
			client_opened();
		pty_bridge_flush(&S.pty);

		struct pollfd fds[3];
		int nfds = 0, pty_slot = -1, lease_slot = -1;
		if (S.stdin_open)
			fds[nfds++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
		if (S.pty.connected && (S.pty.rx.len < PTY_RING || (S.fast_fd >= 0 && S.pty.tx.len))) {
			pty_slot = nfds;
			fds[nfds++] = (struct pollfd){
				.fd = S.pty.master,
				.events = (short)((S.pty.rx.len < PTY_RING ? POLLIN : 0) |
						  (S.fast_fd >= 0 && S.pty.tx.len ? POLLOUT : 0))};
		}
		struct timespec timeout = {0, 0}, *wait = &timeout;
		if (S.fast_fd >= 0) {
			lease_slot = nfds;
			fds[nfds++] = (struct pollfd){.fd = S.fast_fd, .events = POLLIN};
			if (tx_backlogged()) {
				wait = NULL; /* until the client reads (POLLOUT) or a command comes */
			} else if (sim_now() >= S.lease) {
				/* until a new lease; a notice the socket had no room for is tried again */
				if (notify_stalled())
					wait = NULL;
				else
					timeout.tv_nsec = 1000000;
			} /* else: time is left in the lease; look at the I/O and run on */
		} else {
			double ahead = (double)sim_now() / MCU_HZ - wall_now();
			if (ahead < 0)
				ahead = 0;
			timeout = (struct timespec){.tv_sec = (time_t)ahead,
						    .tv_nsec = (long)((ahead - floor(ahead)) * 1e9)};
		}
		double before = wait == &timeout ? 0 : wall_now();
		int r = ppoll(fds, (nfds_t)nfds, wait, &orig);
		if (wait != &timeout)
			S.waited += wall_now() - before;
		if (r < 0)
			continue; /* EINTR: a signal, seen by the loop condition */
		if (S.stdin_open && fds[0].revents)
			read_control();
		if (pty_slot >= 0 && (fds[pty_slot].revents & (POLLIN | POLLHUP | POLLERR))) {
			pty_bridge_read(&S.pty);
			if (!running())
				pty_bridge_drop_rx(&S.pty);
		}
		if (lease_slot >= 0 && fds[lease_slot].revents && !read_leases())
			S.quit = 1; /* the host hung up: nobody can grant time any more */
	}

	eeprom_save();
	pty_bridge_close(&S.pty);
	fclose(S.ctl);
	return 0;
}
