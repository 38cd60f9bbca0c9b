//! Serial (RS-485) ports with half-duplex direction control.
//!
//! serialport has no RS-485 support, so direction control is ours: the kernel's RS-485
//! mode (TIOCSRS485) where the UART driver implements it, else RTS toggled around each
//! frame, else a GPIO driver-enable line, or nothing for auto-direction transceivers.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use serialport::SerialPort as _;

use crate::board::{DirectionControl, Parity, SerialConfig};
use crate::output::Output;

/// Errors from a serial port.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("serial {device}: cannot open: {message}")]
    Open { device: String, message: String },
    #[error("serial {device}: no direction control: {message}")]
    Direction { device: String, message: String },
    #[error("serial {device}: {message}")]
    Io { device: String, message: String },
}

/// Short classification of [`SerialError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialErrorKind {
    Open,
    DirectionControl,
    Io,
}

impl SerialError {
    pub fn kind(&self) -> SerialErrorKind {
        match self {
            SerialError::Open { .. } => SerialErrorKind::Open,
            SerialError::Direction { .. } => SerialErrorKind::DirectionControl,
            SerialError::Io { .. } => SerialErrorKind::Io,
        }
    }
}

/// A half-duplex serial port.
pub trait SerialPort: Send {
    /// Sends a whole frame: switches to transmit, writes, waits until the last bit left the
    /// UART, switches back to receive.
    fn send(&mut self, frame: &[u8]) -> Result<(), SerialError>;
    /// Reads what is available, waiting at most `timeout`; `Ok(0)` on timeout.
    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SerialError>;
}

/// The direction control actually in use (after any fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveDirection {
    Kernel,
    Rts,
    Gpio,
    None,
}

/// Decides the direction control: the requested one, with the kernel → RTS fallback.
/// `try_kernel` enables the kernel's RS-485 mode; `probe_rts` puts RTS in the receive state.
pub fn select_direction(
    device: &str,
    requested: DirectionControl,
    try_kernel: impl FnOnce() -> std::io::Result<()>,
    probe_rts: impl FnOnce() -> Result<(), String>,
) -> Result<ActiveDirection, SerialError> {
    match requested {
        DirectionControl::None => Ok(ActiveDirection::None),
        DirectionControl::Gpio => Ok(ActiveDirection::Gpio),
        DirectionControl::Rts => probe_rts()
            .map(|()| ActiveDirection::Rts)
            .map_err(|message| SerialError::Direction {
                device: device.into(),
                message: format!("cannot control RTS: {message}"),
            }),
        DirectionControl::Kernel => match try_kernel() {
            Ok(()) => Ok(ActiveDirection::Kernel),
            Err(kernel) => {
                log::info!(
                    "serial {device}: the UART driver has no RS-485 mode (TIOCSRS485: {kernel}); switching RTS instead"
                );
                match probe_rts() {
                    Ok(()) => Ok(ActiveDirection::Rts),
                    Err(rts) => Err(SerialError::Direction {
                        device: device.into(),
                        message: format!(
                            "TIOCSRS485 failed ({kernel}) and RTS cannot be controlled either ({rts}); use direction = \"gpio\" or \"none\""
                        ),
                    }),
                }
            }
        },
    }
}

/// `struct serial_rs485` from linux/serial.h (32 bytes).
#[repr(C)]
#[derive(Default)]
struct SerialRs485 {
    flags: u32,
    delay_rts_before_send: u32,
    delay_rts_after_send: u32,
    padding: [u32; 5],
}

const SER_RS485_ENABLED: u32 = 1 << 0;
const SER_RS485_RTS_ON_SEND: u32 = 1 << 1;

/// Turns on the kernel's RS-485 mode (driver enable = RTS high while sending).
#[cfg(target_os = "linux")]
fn enable_kernel_rs485(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let conf = SerialRs485 {
        flags: SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND,
        ..SerialRs485::default()
    };
    // SAFETY: TIOCSRS485 reads one `struct serial_rs485`; `conf` is that struct (repr(C),
    // 32 bytes as in linux/serial.h) and lives across the call; `fd` is an open tty owned
    // by the caller. The ioctl has no other effect on memory.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSRS485, &conf as *const SerialRs485) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn enable_kernel_rs485(_fd: std::os::fd::RawFd) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// An RS-485 port on a tty.
pub struct Rs485Port {
    device: String,
    port: serialport::TTYPort,
    direction: ActiveDirection,
    driver_enable: Option<Box<dyn Output>>,
}

impl Rs485Port {
    /// Opens `config.device` with its baud rate and parity (8 data bits, 1 stop bit) and
    /// sets up direction control. `driver_enable` is the GPIO output for `direction = "gpio"`.
    pub fn open(
        config: &SerialConfig,
        driver_enable: Option<Box<dyn Output>>,
    ) -> Result<Rs485Port, SerialError> {
        Rs485Port::open_path(
            &config.device,
            config.baud,
            config.parity,
            config.direction,
            driver_enable,
        )
    }

    pub fn open_path(
        path: &Path,
        baud: u32,
        parity: Parity,
        direction: DirectionControl,
        driver_enable: Option<Box<dyn Output>>,
    ) -> Result<Rs485Port, SerialError> {
        let device = path.display().to_string();
        let parity = match parity {
            Parity::None => serialport::Parity::None,
            Parity::Even => serialport::Parity::Even,
            Parity::Odd => serialport::Parity::Odd,
        };
        let mut port = serialport::new(device.clone(), baud)
            .parity(parity)
            .data_bits(serialport::DataBits::Eight)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(|e| SerialError::Open {
                device: device.clone(),
                message: e.to_string(),
            })?;
        let fd = port.as_raw_fd();
        let active = {
            let port_for_rts = &mut port;
            select_direction(
                &device,
                direction,
                || enable_kernel_rs485(fd),
                || {
                    port_for_rts
                        .write_request_to_send(false)
                        .map_err(|e| e.to_string())
                },
            )?
        };
        if active == ActiveDirection::Gpio && driver_enable.is_none() {
            return Err(SerialError::Direction {
                device,
                message: "direction = \"gpio\" but no driver-enable line was given".into(),
            });
        }
        Ok(Rs485Port {
            device,
            port,
            direction: active,
            driver_enable,
        })
    }

    /// The direction control in use (after the kernel → RTS fallback).
    pub fn direction(&self) -> ActiveDirection {
        self.direction
    }

    fn io(&self, message: impl ToString) -> SerialError {
        SerialError::Io {
            device: self.device.clone(),
            message: message.to_string(),
        }
    }

    fn transmit(&mut self, on: bool) -> Result<(), SerialError> {
        match self.direction {
            ActiveDirection::Kernel | ActiveDirection::None => Ok(()),
            ActiveDirection::Rts => {
                let r = self.port.write_request_to_send(on);
                r.map_err(|e| self.io(format!("RTS: {e}")))
            }
            ActiveDirection::Gpio => match self.driver_enable.as_mut() {
                Some(de) => de.set(on).map_err(|e| SerialError::Io {
                    device: self.device.clone(),
                    message: format!("driver enable: {e}"),
                }),
                None => Ok(()),
            },
        }
    }
}

impl SerialPort for Rs485Port {
    fn send(&mut self, frame: &[u8]) -> Result<(), SerialError> {
        self.transmit(true)?;
        let written = self.port.write_all(frame).and_then(|()| self.port.flush()); // flush = tcdrain: the last stop bit is out
                                                                                   // Always release the bus, even after a failed write, or every other node is deaf.
        let released = self.transmit(false);
        written.map_err(|e| self.io(e))?;
        released
    }

    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SerialError> {
        self.port.set_timeout(timeout).map_err(|e| self.io(e))?;
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(0),
            Err(e) => Err(self.io(e)),
        }
    }
}

/// A tty used as it is, with no direction control: the master side of a pseudo-terminal
/// (tests and benchmarks put a peripheral there) or a full-duplex adapter.
impl SerialPort for serialport::TTYPort {
    fn send(&mut self, frame: &[u8]) -> Result<(), SerialError> {
        let io = |e: std::io::Error| SerialError::Io {
            device: "tty".into(),
            message: e.to_string(),
        };
        self.write_all(frame).map_err(io)?;
        self.flush().map_err(io)
    }

    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SerialError> {
        let io = |e: String| SerialError::Io {
            device: "tty".into(),
            message: e,
        };
        self.set_timeout(timeout).map_err(|e| io(e.to_string()))?;
        match self.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(0),
            Err(e) => Err(io(e.to_string())),
        }
    }
}

/// An in-memory port for the sim backend: remembers what was sent, answers from a queue.
#[derive(Debug, Default, Clone)]
pub struct MemSerialPort {
    pub sent: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    pub incoming: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<u8>>>,
}

impl SerialPort for MemSerialPort {
    fn send(&mut self, frame: &[u8]) -> Result<(), SerialError> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(frame.to_vec());
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SerialError> {
        let mut q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
        if q.is_empty() {
            drop(q);
            std::thread::sleep(timeout);
            return Ok(0);
        }
        let mut n = 0;
        while n < buf.len() {
            match q.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HalError;
    use std::sync::{Arc, Mutex};

    /// A driver-enable output that records every change.
    struct Recorder(Arc<Mutex<Vec<bool>>>);
    impl Output for Recorder {
        fn set(&mut self, on: bool) -> Result<(), HalError> {
            self.0.lock().unwrap().push(on);
            Ok(())
        }
        fn is_on(&self) -> bool {
            self.0.lock().unwrap().last().copied().unwrap_or(false)
        }
    }

    fn pty_pair() -> (serialport::TTYPort, std::path::PathBuf) {
        let (master, slave) = serialport::TTYPort::pair().unwrap();
        let path = std::path::PathBuf::from(slave.name().unwrap());
        // Keep the slave open too (closing the last slave fd hangs up the master side).
        std::mem::forget(slave);
        (master, path)
    }

    #[test]
    fn frames_cross_a_pty_both_ways_with_gpio_direction() {
        let (mut master, path) = pty_pair();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut port = Rs485Port::open_path(
            &path,
            19200,
            Parity::Even,
            DirectionControl::Gpio,
            Some(Box::new(Recorder(log.clone()))),
        )
        .unwrap();
        assert_eq!(port.direction(), ActiveDirection::Gpio);
        port.send(&[0x53, 0x00, 0x08, 0xff]).unwrap();
        assert_eq!(*log.lock().unwrap(), vec![true, false]);
        master.set_timeout(Duration::from_secs(2)).unwrap();
        let mut got = [0u8; 4];
        master.read_exact(&mut got).unwrap();
        assert_eq!(got, [0x53, 0x00, 0x08, 0xff]);

        master.write_all(b"\x02reply\x03").unwrap();
        let mut buf = [0u8; 16];
        let mut n = 0;
        while n < 7 {
            let k = port.receive(&mut buf[n..], Duration::from_secs(2)).unwrap();
            assert!(k > 0, "timed out");
            n += k;
        }
        assert_eq!(&buf[..n], b"\x02reply\x03");
        // Nothing more: a timeout is Ok(0), not an error.
        assert_eq!(
            port.receive(&mut buf, Duration::from_millis(50)).unwrap(),
            0
        );
    }

    #[test]
    fn kernel_mode_on_a_pty_falls_back_to_rts_which_a_pty_also_lacks() {
        let (_master, path) = pty_pair();
        let err = Rs485Port::open_path(&path, 9600, Parity::None, DirectionControl::Kernel, None)
            .err()
            .unwrap();
        assert_eq!(err.kind(), SerialErrorKind::DirectionControl);
        let msg = err.to_string();
        assert!(msg.contains("TIOCSRS485") && msg.contains("RTS"), "{msg}");
        // Direction "none" opens the same pty fine.
        let port =
            Rs485Port::open_path(&path, 9600, Parity::Odd, DirectionControl::None, None).unwrap();
        assert_eq!(port.direction(), ActiveDirection::None);
    }

    #[test]
    fn fallback_selection() {
        let enotty = || Err(std::io::Error::from_raw_os_error(libc::ENOTTY));
        assert_eq!(
            select_direction("t", DirectionControl::Kernel, || Ok(()), || panic!()).unwrap(),
            ActiveDirection::Kernel
        );
        assert_eq!(
            select_direction("t", DirectionControl::Kernel, enotty, || Ok(())).unwrap(),
            ActiveDirection::Rts
        );
        assert!(
            select_direction("t", DirectionControl::Rts, || panic!(), || Err("no".into())).is_err()
        );
        assert_eq!(
            select_direction("t", DirectionControl::None, || panic!(), || panic!()).unwrap(),
            ActiveDirection::None
        );
    }

    #[test]
    fn missing_device_is_an_open_error() {
        let e = Rs485Port::open_path(
            Path::new("/dev/nonexistent-tty"),
            9600,
            Parity::None,
            DirectionControl::None,
            None,
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), SerialErrorKind::Open);
        assert!(e.to_string().contains("/dev/nonexistent-tty"));
    }

    #[test]
    fn serial_rs485_struct_matches_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<SerialRs485>(), 32);
    }
}
