/*
 * ina219.h - a TI INA219 (SBOS448) current/power monitor as a simavr TWI slave.
 *
 * The model holds the analog inputs (bus volts, load current, shunt ohms) and
 * the six registers. Conversions follow the configured ADC times, counted in
 * simulated cycles read from a clock callback; data registers latch the
 * inputs at the end of each conversion, as the device does.
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3) when built; the built
 * runner is never distributed.
 */
#ifndef POWERHIL_SIM_INA219_H
#define POWERHIL_SIM_INA219_H

#include <stdint.h>

struct avr_t;
struct avr_irq_t;

enum {
	INA219_REG_CONFIG = 0,
	INA219_REG_SHUNT = 1,
	INA219_REG_BUS = 2,
	INA219_REG_POWER = 3,
	INA219_REG_CURRENT = 4,
	INA219_REG_CAL = 5,
	INA219_REG_COUNT = 6,
};

#define INA219_CONFIG_RESET 0x399Fu
#define INA219_CONFIG_RST 0x8000u
/* Absolute maximum on IN+ and IN- (SBOS448 7.1): above it the chip is out of its ratings. */
#define INA219_ABS_MAX_VOLTS 26.0

typedef uint64_t (*ina219_clock_fn)(void *ctx);

typedef struct ina219_t {
	/* inputs */
	double bus_volts;  /* volts at IN- with respect to ground */
	double amps;       /* load current through the shunt, IN+ to IN- */
	double shunt_ohms; /* shunt resistance */
	int present;       /* answers on the bus (0: absent or unpowered) */

	/* registers; bus is kept as the 13-bit count, flags apart */
	uint16_t config;
	uint16_t cal;
	int16_t shunt;
	uint16_t bus_count;
	uint16_t power;
	int16_t current;
	int cnvr;
	int ovf;
	uint8_t pointer;

	/* conversions, in simulated cycles */
	uint32_t frequency;
	uint64_t conv_start;  /* when the running conversion sequence began */
	uint64_t conv_cycles; /* one full conversion; 0 when none run */
	int conv_single;      /* triggered mode: one conversion, then idle */
	uint64_t conv_done;   /* conversions of this sequence already latched */
	uint64_t conversions; /* total latched since power-on, for reports */
	ina219_clock_fn clock;
	void *clock_ctx;

	/* I2C transaction */
	uint8_t addr7;
	int selected;      /* addressed since the last START */
	uint8_t index;     /* data bytes of this transaction so far */
	uint8_t wbuf[2];   /* register bytes being written */
	uint16_t rlatch;   /* register value being read, MSB first */
	struct avr_irq_t *irq; /* [0] to the TWI input, [1] from the TWI output */
} ina219_t;

/* Sets up the model at power-on state, with default inputs (0 V, 0 A, 0.1 ohm). */
void ina219_init(ina219_t *ina, uint32_t frequency, ina219_clock_fn clock, void *ctx);

/* Power-on reset at the current clock: registers to their POR values, conversions restart. */
void ina219_power_on(ina219_t *ina);

/* Changes the analog inputs. Conversions completed before now keep the old inputs. */
void ina219_set_inputs(ina219_t *ina, double bus_volts, double amps, double shunt_ohms);

/* Latches every conversion completed by now. */
void ina219_sync(ina219_t *ina);

/* Register value as a read over I2C would return it, without the read's side effects. */
uint16_t ina219_peek(ina219_t *ina, uint8_t reg);

/* Full conversion time in microseconds for a configuration value (0: no conversions). */
uint32_t ina219_conversion_us(uint16_t config);

/* Connects the model to the AVR's TWI as a slave at addr7. */
void ina219_attach(ina219_t *ina, struct avr_t *avr, uint8_t addr7);

#endif
