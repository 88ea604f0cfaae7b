/*
 * pty_bridge.h - UART0 of a simavr AVR on a pseudo-terminal, single-threaded.
 *
 * The master side stays in this process; clients open the slave path. Bytes the
 * firmware sends while no client has the slave open are dropped (like a USB-serial
 * bridge with the port closed). Bytes from the client reach the UART no faster
 * than the line rate the firmware configured (UBRR0, U2X0, 10 bits a byte) and
 * never while the UART's receive FIFO is full.
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3) when built.
 */
#ifndef POWERHIL_SIM_PTY_BRIDGE_H
#define POWERHIL_SIM_PTY_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

struct avr_t;
struct avr_irq_t;

#define PTY_RING 4096

typedef struct pty_ring_t {
	uint8_t buf[PTY_RING];
	size_t head, len;
} pty_ring_t;

typedef struct pty_bridge_t {
	int master;      /* -1 when closed */
	char path[64];   /* slave path, e.g. /dev/pts/7 */
	int connected;   /* a client has the slave open */
	int xoff;        /* the UART's receive FIFO is full */
	pty_ring_t rx;   /* client -> AVR, waiting for its line slot */
	pty_ring_t tx;   /* AVR -> client, waiting for the master to take it */
	uint64_t rx_due; /* simulated cycle at which the next byte may go in */
	struct avr_t *avr;
	struct avr_irq_t *irq; /* the UART's input IRQ */
	/* counters for reports */
	uint64_t rx_bytes, tx_bytes, rx_dropped, tx_dropped;
} pty_bridge_t;

/* Opens a raw pseudo-terminal. Returns 0, or -1 with errno set. */
int pty_bridge_open(pty_bridge_t *p);

/* Connects to UART0 of avr and stops simavr's own console echo and poll sleeps. */
void pty_bridge_attach(pty_bridge_t *p, struct avr_t *avr);

/* Updates `connected`; returns 1 when a client has just opened the slave. */
int pty_bridge_check(pty_bridge_t *p);

/* Moves bytes between the master and the rings (non-blocking). */
void pty_bridge_read(pty_bridge_t *p);
void pty_bridge_flush(pty_bridge_t *p);

/* 1 when bytes wait for the AVR. */
int pty_bridge_rx_pending(const pty_bridge_t *p);

/* Feeds one byte to the UART if its slot has come: returns 1 if it did. */
int pty_bridge_feed(pty_bridge_t *p, uint64_t now);

/* Drops the bytes waiting for the AVR (the MCU is unpowered: its UART hears nothing). */
void pty_bridge_drop_rx(pty_bridge_t *p);

/* After an MCU reset: the UART's FIFO is empty again. */
void pty_bridge_mcu_reset(pty_bridge_t *p);

void pty_bridge_close(pty_bridge_t *p);

#endif
