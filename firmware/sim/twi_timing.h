/*
 * twi_timing.h - the AVR's TWI master at the bus speed its registers set.
 *
 * simavr 1.6 raises TWINT 9 us after a byte and at once after a START, whatever TWBR and
 * TWPS say, and clears TWSTO at once. This module retimes those to the bus: one SCL period
 * is 16 + 2 * TWBR * 4^TWPS CPU cycles (the ATmega328P datasheet's SCL frequency), read
 * when each transfer starts; a START or repeated START takes 1 period, a byte with its ACK
 * 9 periods, a STOP 1 period (TWSTO stays set until it is on the bus).
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3) when built.
 */
#ifndef POWERHIL_SIM_TWI_TIMING_H
#define POWERHIL_SIM_TWI_TIMING_H

#include <stdint.h>

struct avr_t;
struct avr_twi_t;

typedef struct twi_timing_t {
	struct avr_t *avr;
	struct avr_twi_t *twi;
} twi_timing_t;

/* SCL period in CPU cycles for a TWBR value and TWSR's prescaler bits (TWPS1:0). */
uint32_t twi_scl_period(uint8_t twbr, uint8_t twps);

/* Hooks into the AVR's TWI (after avr_init). Returns 0, or -1 if the MCU has no TWI. */
int twi_timing_attach(twi_timing_t *t, struct avr_t *avr);

#endif
