/*
 * pty_bridge.c - UART0 <-> pseudo-terminal, in the simulation thread.
 *
 * simavr's parts/uart_pty runs its own thread that raises AVR IRQs without the
 * simulator's involvement, prints to stdout, symlinks /tmp/simavr-uart0 (shared by
 * every simavr on the machine, left behind on exit) and pushes input bytes as fast
 * as the UART FIFO takes them. This bridge does the transfer from the main loop
 * instead, at the UART's line rate.
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3) when built.
 */
#define _GNU_SOURCE
#include "pty_bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_io.h>
#include <sim_irq.h>

/* ATmega328P USART0 registers (data space addresses) */
enum {
	UCSR0A = 0xC0, /* U2X0 = bit 1 */
	UCSR0B = 0xC1, /* UCSZ02 = bit 2 */
	UCSR0C = 0xC2, /* UPM0 = bits 5:4, USBS0 = bit 3, UCSZ0 = bits 2:1 */
	UBRR0L = 0xC4,
	UBRR0H = 0xC5,
};

static size_t ring_room(const pty_ring_t *r)
{
	return PTY_RING - r->len;
}

static void ring_put(pty_ring_t *r, uint8_t b)
{
	r->buf[(r->head + r->len) % PTY_RING] = b;
	r->len++;
}

static uint8_t ring_get(pty_ring_t *r)
{
	uint8_t b = r->buf[r->head];
	r->head = (r->head + 1) % PTY_RING;
	r->len--;
	return b;
}

int pty_bridge_open(pty_bridge_t *p)
{
	memset(p, 0, sizeof(*p));
	p->master = -1;
	int m, s;
	if (openpty(&m, &s, NULL, NULL, NULL) < 0)
		return -1;
	struct termios tio;
	if (tcgetattr(s, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(s, TCSANOW, &tio);
	}
	if (ptsname_r(m, p->path, sizeof(p->path)) != 0) {
		int e = errno;
		close(m);
		close(s);
		errno = e;
		return -1;
	}
	/* Only clients hold the slave: the master then reports POLLHUP while none does. */
	close(s);
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	fcntl(m, F_SETFD, FD_CLOEXEC);
	p->master = m;
	return 0;
}

static void uart_output_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	pty_bridge_t *p = param;
	if (!p->connected) {
		p->tx_dropped++;
		return;
	}
	if (!ring_room(&p->tx))
		pty_bridge_flush(p);
	if (!ring_room(&p->tx)) {
		p->tx_dropped++;
		return;
	}
	ring_put(&p->tx, (uint8_t)value);
	p->tx_bytes++;
}

static void uart_xoff_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	pty_bridge_t *p = param;
	p->xoff = value != 0;
}

static void uart_xon_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)value;
	pty_bridge_t *p = param;
	p->xoff = 0;
}

void pty_bridge_attach(pty_bridge_t *p, struct avr_t *avr)
{
	p->avr = avr;
	uint32_t flags = 0;
	avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
	flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
	avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
	p->irq = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
				uart_output_hook, p);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
				uart_xoff_hook, p);
	avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
				uart_xon_hook, p);
}

int pty_bridge_check(pty_bridge_t *p)
{
	if (p->master < 0)
		return 0;
	struct pollfd pfd = {.fd = p->master, .events = POLLIN};
	int was = p->connected;
	if (poll(&pfd, 1, 0) < 0)
		return 0;
	p->connected = !(pfd.revents & POLLHUP);
	if (!p->connected && p->tx.len) {
		p->tx_dropped += p->tx.len;
		p->tx.len = 0;
	}
	return p->connected && !was;
}

void pty_bridge_read(pty_bridge_t *p)
{
	uint8_t buf[512];
	while (p->connected && ring_room(&p->rx)) {
		size_t want = ring_room(&p->rx) < sizeof(buf) ? ring_room(&p->rx) : sizeof(buf);
		ssize_t n = read(p->master, buf, want);
		if (n <= 0) {
			if (n < 0 && errno == EIO) /* the last client closed the slave */
				p->connected = 0;
			return;
		}
		for (ssize_t i = 0; i < n; i++)
			ring_put(&p->rx, buf[i]);
	}
}

void pty_bridge_flush(pty_bridge_t *p)
{
	while (p->connected && p->tx.len) {
		size_t chunk = PTY_RING - p->tx.head;
		if (chunk > p->tx.len)
			chunk = p->tx.len;
		ssize_t n = write(p->master, p->tx.buf + p->tx.head, chunk);
		if (n <= 0)
			return; /* EAGAIN: the client is not reading; keep the bytes */
		p->tx.head = (p->tx.head + (size_t)n) % PTY_RING;
		p->tx.len -= (size_t)n;
	}
}

int pty_bridge_rx_pending(const pty_bridge_t *p)
{
	return p->rx.len != 0;
}

/* Cycles one character takes on the line with the UART's current settings. */
static uint64_t byte_cycles(const struct avr_t *avr)
{
	const uint8_t *d = avr->data;
	unsigned ubrr = (unsigned)(d[UBRR0H] & 0x0F) << 8 | d[UBRR0L];
	unsigned per_bit = (ubrr + 1) * ((d[UCSR0A] & 0x02) ? 8 : 16);
	unsigned ucsz = ((d[UCSR0C] >> 1) & 3) | ((d[UCSR0B] & 0x04) ? 4 : 0);
	unsigned data_bits = ucsz == 7 ? 9 : ucsz < 4 ? 5 + ucsz : 8;
	unsigned parity = (d[UCSR0C] & 0x20) ? 1 : 0;
	unsigned stop = (d[UCSR0C] & 0x08) ? 2 : 1;
	return (uint64_t)per_bit * (1 + data_bits + parity + stop);
}

int pty_bridge_feed(pty_bridge_t *p, uint64_t now)
{
	if (!p->rx.len || p->xoff || now < p->rx_due)
		return 0;
	uint8_t b = ring_get(&p->rx);
	p->rx_bytes++;
	p->rx_due = now + byte_cycles(p->avr);
	avr_raise_irq(p->irq, b);
	return 1;
}

void pty_bridge_drop_rx(pty_bridge_t *p)
{
	p->rx_dropped += p->rx.len;
	p->rx.len = 0;
}

void pty_bridge_mcu_reset(pty_bridge_t *p)
{
	p->xoff = 0;
}

void pty_bridge_close(pty_bridge_t *p)
{
	if (p->master >= 0) {
		pty_bridge_flush(p);
		close(p->master);
		p->master = -1;
	}
	p->connected = 0;
}
