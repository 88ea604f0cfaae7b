/*
 * ina219.c - TI INA219 model for simavr, written from the datasheet (SBOS448).
 *
 * Registers (all 16 bits, big-endian on the wire, pointer not auto-incremented):
 *   00 configuration  RST(15) BRNG(13) PG(12:11) BADC(10:7) SADC(6:3) MODE(2:0), POR 0x399F
 *   01 shunt voltage  signed, LSB 10 uV, clipped to the PGA range (+-40/80/160/320 mV)
 *   02 bus voltage    count of 4 mV in bits 15:3, CNVR bit 1, OVF bit 0
 *   03 power          current x bus / 5000 (register values), LSB = 20 x current LSB
 *   04 current        shunt x calibration / 4096, signed
 *   05 calibration    bit 0 always reads 0
 * CNVR is set when a conversion completes and cleared by reading the power register
 * or by writing a mode other than power-down/ADC-off. OVF is set when the current or
 * power arithmetic leaves its register's range (the register then saturates).
 *
 * Part of powerhil (MIT). Links against simavr (GPL-3) when built.
 */
#include "ina219.h"

#include <math.h>
#include <stdlib.h>

#include <avr_twi.h>
#include <sim_avr.h>
#include <sim_io.h>
#include <sim_irq.h>

enum { IRQ_TO_TWI = 0, IRQ_FROM_TWI = 1, IRQ_COUNT = 2 };

static const char *irq_names[IRQ_COUNT] = {
	[IRQ_TO_TWI] = "32>ina219.out",
	[IRQ_FROM_TWI] = "32<ina219.in",
};

/* Conversion time of one ADC setting (BADC or SADC, 4 bits), datasheet table 6. */
static uint32_t adc_us(unsigned code)
{
	static const uint32_t resolution[4] = {84, 148, 276, 532};
	static const uint32_t averaging[8] = {532, 1060, 2130, 4260, 8510, 17020, 34050, 68100};
	return (code & 8) ? averaging[code & 7] : resolution[code & 3];
}

uint32_t ina219_conversion_us(uint16_t config)
{
	uint32_t bus = adc_us((config >> 7) & 0xF);
	uint32_t shunt = adc_us((config >> 3) & 0xF);
	switch (config & 7) {
	case 1: /* shunt, triggered */
	case 5: /* shunt, continuous */
		return shunt;
	case 2: /* bus, triggered */
	case 6: /* bus, continuous */
		return bus;
	case 3: /* shunt and bus: the shunt conversions, then the bus ones */
	case 7:
		return shunt + bus;
	default: /* 0 power-down, 4 ADC off */
		return 0;
	}
}

static uint64_t now(ina219_t *ina)
{
	return ina->clock(ina->clock_ctx);
}

static void restart_conversions(ina219_t *ina)
{
	uint32_t us = ina219_conversion_us(ina->config);
	unsigned mode = ina->config & 7;
	ina->conv_start = now(ina);
	ina->conv_done = 0;
	ina->conv_cycles = ((uint64_t)us * ina->frequency + 500000) / 1000000;
	ina->conv_single = mode >= 1 && mode <= 3;
}

static long clip(long v, long lo, long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The end of a conversion: data registers take the inputs, then the math runs. */
static void latch(ina219_t *ina)
{
	unsigned mode = ina->config & 7;
	if (mode & 1) {
		static const long pga_limit[4] = {4000, 8000, 16000, 32000}; /* 40..320 mV in 10 uV */
		long limit = pga_limit[(ina->config >> 11) & 3];
		double counts = ina->amps * ina->shunt_ohms * 1e5;
		if (counts > limit)
			counts = limit;
		if (counts < -limit)
			counts = -limit;
		ina->shunt = (int16_t)lround(counts);
	}
	if (mode & 2) {
		long max = (ina->config & 0x2000) ? 8191 : 4095; /* BRNG: 32 V or 16 V range */
		double counts = ina->bus_volts * 250.0;          /* 4 mV steps */
		if (counts > max)
			counts = max;
		if (counts < 0)
			counts = 0;
		ina->bus_count = (uint16_t)lround(counts);
	}
	int ovf = 0;
	long long current = (long long)ina->shunt * ina->cal / 4096;
	if (current > INT16_MAX || current < INT16_MIN) {
		ovf = 1;
		current = clip((long)current, INT16_MIN, INT16_MAX);
	}
	ina->current = (int16_t)current;
	long long power = llabs(current) * ina->bus_count / 5000;
	if (power > UINT16_MAX) {
		ovf = 1;
		power = UINT16_MAX;
	}
	ina->power = (uint16_t)power;
	ina->ovf = ovf;
}

void ina219_sync(ina219_t *ina)
{
	if (!ina->conv_cycles)
		return;
	uint64_t t = now(ina);
	if (t < ina->conv_start)
		return;
	uint64_t done = (t - ina->conv_start) / ina->conv_cycles;
	if (ina->conv_single && done > 1)
		done = 1;
	if (done > ina->conv_done) {
		latch(ina);
		ina->conversions += done - ina->conv_done;
		ina->conv_done = done;
		ina->cnvr = 1;
	}
}

void ina219_power_on(ina219_t *ina)
{
	ina->config = INA219_CONFIG_RESET;
	ina->cal = 0;
	ina->shunt = 0;
	ina->bus_count = 0;
	ina->power = 0;
	ina->current = 0;
	ina->cnvr = 0;
	ina->ovf = 0;
	ina->pointer = 0;
	ina->selected = 0;
	ina->index = 0;
	ina->conversions = 0;
	restart_conversions(ina);
}

void ina219_init(ina219_t *ina, uint32_t frequency, ina219_clock_fn clock, void *ctx)
{
	*ina = (ina219_t){
		.bus_volts = 0.0,
		.amps = 0.0,
		.shunt_ohms = 0.1,
		.present = 1,
		.frequency = frequency,
		.clock = clock,
		.clock_ctx = ctx,
		.addr7 = 0x40,
	};
	ina219_power_on(ina);
}

void ina219_set_inputs(ina219_t *ina, double bus_volts, double amps, double shunt_ohms)
{
	ina219_sync(ina);
	ina->bus_volts = bus_volts;
	ina->amps = amps;
	ina->shunt_ohms = shunt_ohms;
}

uint16_t ina219_peek(ina219_t *ina, uint8_t reg)
{
	ina219_sync(ina);
	switch (reg) {
	case INA219_REG_CONFIG:
		return ina->config;
	case INA219_REG_SHUNT:
		return (uint16_t)ina->shunt;
	case INA219_REG_BUS:
		return (uint16_t)(ina->bus_count << 3 | ina->cnvr << 1 | ina->ovf);
	case INA219_REG_POWER:
		return ina->power;
	case INA219_REG_CURRENT:
		return (uint16_t)ina->current;
	case INA219_REG_CAL:
		return ina->cal;
	default:
		return 0;
	}
}

static void write_register(ina219_t *ina, uint8_t reg, uint16_t v)
{
	ina219_sync(ina);
	if (reg == INA219_REG_CONFIG) {
		if (v & INA219_CONFIG_RST) {
			ina219_power_on(ina);
			return;
		}
		ina->config = v;
		unsigned mode = v & 7;
		if (mode != 0 && mode != 4)
			ina->cnvr = 0;
		restart_conversions(ina);
	} else if (reg == INA219_REG_CAL) {
		ina->cal = v & 0xFFFE;
	}
	/* registers 01..04 are read-only; writes to them are ignored */
}

static uint16_t read_register(ina219_t *ina, uint8_t reg)
{
	uint16_t v = ina219_peek(ina, reg);
	if (reg == INA219_REG_POWER)
		ina->cnvr = 0;
	return v;
}

static void reply(ina219_t *ina, uint8_t msg, uint8_t addr, uint8_t data)
{
	avr_raise_irq(ina->irq + IRQ_TO_TWI, avr_twi_irq_msg(msg, addr, data));
}

/* Called for every bus event the AVR's TWI master generates. */
static void twi_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	ina219_t *ina = param;
	avr_twi_msg_irq_t m;
	m.u.v = value;
	uint8_t msg = m.u.twi.msg;
	uint8_t addr = m.u.twi.addr;

	if (msg & TWI_COND_STOP)
		ina->selected = 0;
	if (msg & TWI_COND_START) {
		ina->selected = ina->present && (addr >> 1) == ina->addr7;
		ina->index = 0;
		if (ina->selected)
			reply(ina, TWI_COND_ACK, addr, 1);
		return;
	}
	if (!ina->selected)
		return;
	if (msg & TWI_COND_WRITE) {
		uint8_t data = m.u.twi.data;
		reply(ina, TWI_COND_ACK, addr, 1);
		if (ina->index == 0) {
			ina->pointer = data;
		} else if (ina->index <= 2) {
			ina->wbuf[ina->index - 1] = data;
			if (ina->index == 2)
				write_register(ina, ina->pointer, (uint16_t)(ina->wbuf[0] << 8 | ina->wbuf[1]));
		}
		if (ina->index < 255)
			ina->index++;
	} else if (msg & TWI_COND_READ) {
		uint8_t byte;
		if ((ina->index & 1) == 0) {
			ina->rlatch = read_register(ina, ina->pointer);
			byte = (uint8_t)(ina->rlatch >> 8);
		} else {
			byte = (uint8_t)(ina->rlatch & 0xFF);
		}
		ina->index++;
		reply(ina, TWI_COND_READ, addr, byte);
	}
}

void ina219_attach(ina219_t *ina, struct avr_t *avr, uint8_t addr7)
{
	ina->addr7 = addr7;
	ina->irq = avr_alloc_irq(&avr->irq_pool, 0, IRQ_COUNT, irq_names);
	avr_irq_register_notify(ina->irq + IRQ_FROM_TWI, twi_hook, ina);
	avr_connect_irq(ina->irq + IRQ_TO_TWI, avr_io_getirq(avr, AVR_IOCTL_TWI_GETIRQ(0), TWI_IRQ_INPUT));
	avr_connect_irq(avr_io_getirq(avr, AVR_IOCTL_TWI_GETIRQ(0), TWI_IRQ_OUTPUT), ina->irq + IRQ_FROM_TWI);
}
