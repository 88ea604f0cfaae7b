/*
 * twi_timing.c - retimes simavr 1.6's TWI master to the SCL rate TWBR and TWPS set.
 *
 * simavr's TWCR write handler starts each bus action and schedules the status (and TWINT)
 * with a cycle timer: 0 us for a START, 9 us for a byte, whatever the bit rate; a STOP it
 * completes at once. It must stay in charge of the status (the slave acknowledges in the
 * same call, and the status it schedules carries that ACK), so this module only moves the
 * timer: a second TWCR write handler, which simavr's muxer calls after its own, finds the
 * timer simavr has just set (its parameter is the TWI module) and sets it again for the
 * bus time, and holds TWSTO set for the STOP's period. Nothing else of the TWI changes.
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3) when built.
 */
#include "twi_timing.h"

#include <stddef.h>

#include <avr_twi.h>
#include <sim_avr.h>
#include <sim_cycle_timers.h>
#include <sim_io.h>
#include <sim_regbit.h>
#include <sim_time.h>

enum {
	TW_STATUS_START = 0x08,
	TW_STATUS_REP_START = 0x10,
	PERIODS_START = 1, /* START or repeated START: SDA falls, SCL falls after tHD;STA */
	PERIODS_BYTE = 9,  /* 8 data bits and the ACK bit */
	PERIODS_STOP = 1,  /* SCL rises, SDA rises after tSU;STO */
	SIMAVR_BYTE_US = 9, /* the delay simavr 1.6 gives a byte */
};

uint32_t twi_scl_period(uint8_t twbr, uint8_t twps)
{
	return 16u + 2u * twbr * (1u << (2 * (twps & 3)));
}

static uint32_t period(twi_timing_t *t)
{
	avr_t *avr = t->avr;
	return twi_scl_period(avr->data[t->twi->r_twbr], avr->data[t->twi->r_twsr] & 3);
}

/* The status timer simavr has pending for the TWI, or NULL. */
static avr_cycle_timer_slot_t *status_timer(twi_timing_t *t)
{
	for (avr_cycle_timer_slot_t *s = t->avr->cycle_timers.timer; s; s = s->next)
		if (s->param == t->twi)
			return s;
	return NULL;
}

static avr_cycle_count_t stop_on_bus(avr_t *avr, avr_cycle_count_t when, void *param)
{
	(void)when;
	twi_timing_t *t = param;
	avr_regbit_clear(avr, t->twi->twsto);
	return 0;
}

static void twcr_written(avr_t *avr, avr_io_addr_t addr, uint8_t v, void *param)
{
	(void)addr;
	twi_timing_t *t = param;
	avr_twi_t *twi = t->twi;
	/* a write while a STOP is held takes the register over (Wire waits for TWSTO first) */
	avr_cycle_timer_cancel(avr, stop_on_bus, t);
	if (!avr_regbit_get(avr, twi->twen))
		return;

	avr_cycle_timer_slot_t *s = status_timer(t);
	if (s) {
		/* only a timer this write has set: simavr's delays are 0 or 9 us from now */
		avr_cycle_count_t in = s->when - avr->cycle;
		if (in == 0 || in == avr_usec_to_cycles(avr, SIMAVR_BYTE_US)) {
			int start = twi->next_twstate == TW_STATUS_START ||
				    twi->next_twstate == TW_STATUS_REP_START;
			uint32_t periods = start ? PERIODS_START : PERIODS_BYTE;
			avr_cycle_timer_register(avr, (avr_cycle_count_t)periods * period(t), s->timer,
						 twi);
		}
	}
	/* simavr has put the STOP on the bus and cleared TWSTO; it stays set for the STOP's time */
	uint8_t twsto = (uint8_t)(1u << twi->twsto.bit);
	if (twi->twsto.reg == twi->r_twcr && (v & twsto)) {
		avr_regbit_set(avr, twi->twsto);
		avr_cycle_timer_register(avr, (avr_cycle_count_t)PERIODS_STOP * period(t), stop_on_bus,
					 t);
	}
}

int twi_timing_attach(twi_timing_t *t, avr_t *avr)
{
	t->avr = avr;
	t->twi = NULL;
	for (avr_io_t *io = avr->io_port; io; io = io->next)
		if (io->irq_ioctl_get == AVR_IOCTL_TWI_GETIRQ(0))
			t->twi = (avr_twi_t *)io;
	if (!t->twi)
		return -1;
	avr_register_io_write(avr, t->twi->r_twcr, twcr_written, t);
	return 0;
}
