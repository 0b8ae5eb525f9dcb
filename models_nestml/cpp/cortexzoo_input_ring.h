// cortexzoo: input buffers for NESTML-generated neurons (inserted into NESTML's
// neuron header template at build time; see TEMPLATE_PATCHES in build.py).
//
// NESTML gives every input port its own nest::RingBuffer, held in a
// heap-allocated std::vector. Each incoming spike then follows two pointers
// and each time step reads one cache line per port. NEST's built-ins
// (iaf_psc_exp, ...) keep all input channels of one time slot side by side
// (nest::MultiChannelInputBuffer), so that one cache line serves them all.
// InputRing does the same for NESTML models: one slot-major ring for all
// spike ports and continuous inputs. The spike buffer owns the ring (a spike
// then touches only the ring's two words next to each other and its slot);
// the continuous inputs see it through RingChannelsView. RingChannel keeps
// the nest::RingBuffer calls the generated code makes (add_value, get_value,
// ...), so the rest of the template is unchanged. InlineArray keeps the
// per-step sums inside the neuron object instead of on the heap.
#ifndef CORTEXZOO_INPUT_RING_H
#define CORTEXZOO_INPUT_RING_H

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "kernel_manager.h"

namespace cortexzoo
{

// All input channels of one neuron, slot-major: values of slot s, channel c at s * n_channels + c.
class InputRing
{
public:
  void
  reserve_channels( std::size_t n )
  {
    n_channels_ = std::max( n_channels_, n );
  }

  // Match the kernel's current delays; keeps the values when the size is right.
  void
  resize()
  {
    const std::size_t size = n_slots() * n_channels_;
    if ( buffer_.size() != size )
    {
      buffer_.assign( size, 0.0 );
    }
  }

  void
  clear()
  {
    buffer_.assign( n_slots() * n_channels_, 0.0 );
  }

  void
  add_value( long rel_steps, std::size_t channel, double value )
  {
    buffer_[ slot( rel_steps ) * n_channels_ + channel ] += value;
  }

  // Read and zero one channel of a slot, as nest::RingBuffer::get_value does.
  double
  get_value( long lag, std::size_t channel )
  {
    double& v = buffer_[ slot( lag ) * n_channels_ + channel ];
    const double out = v;
    v = 0.0;
    return out;
  }

  // Read without zeroing (waveform-relaxation iterations).
  double
  get_value_wfr_update( long lag, std::size_t channel ) const
  {
    return buffer_[ slot( lag ) * n_channels_ + channel ];
  }

private:
  static std::size_t
  n_slots()
  {
    return nest::kernel().connection_manager.get_min_delay() + nest::kernel().connection_manager.get_max_delay();
  }

  static std::size_t
  slot( long steps )
  {
    return nest::kernel().event_delivery_manager.get_modulo( steps );
  }

  // n_channels_ first: next to the buffer's data pointer, so both are one cache line.
  std::size_t n_channels_ = 0;
  std::vector< double > buffer_;
};

// One channel of an InputRing with nest::RingBuffer's interface.
class RingChannel
{
public:
  RingChannel( InputRing* ring, std::size_t channel )
    : ring_( ring )
    , channel_( channel )
  {
  }

  void
  add_value( long rel_steps, double value )
  {
    ring_->add_value( rel_steps, channel_, value );
  }

  double
  get_value( long lag )
  {
    return ring_->get_value( lag, channel_ );
  }

  double
  get_value_wfr_update( long lag ) const
  {
    return ring_->get_value_wfr_update( lag, channel_ );
  }

private:
  InputRing* ring_;
  std::size_t channel_;
};

// The spike-port channels 0 .. n-1; owns the ring, where a
// std::vector< nest::RingBuffer > was.
class RingChannels
{
public:
  RingChannels() = default;

  explicit RingChannels( std::size_t n )
    : n_( n )
  {
    ring_.reserve_channels( n );
  }

  RingChannel
  operator[]( std::size_t i )
  {
    return RingChannel( &ring_, i );
  }

  InputRing&
  ring()
  {
    return ring_;
  }

  std::size_t
  size() const
  {
    return n_;
  }

  void
  clear()
  {
    ring_.clear();
  }

  void
  resize( std::size_t )
  {
    ring_.resize();
  }

private:
  InputRing ring_;
  std::size_t n_ = 0;
};

// Channels first .. first+n-1 of another RingChannels' ring (the continuous inputs).
class RingChannelsView
{
public:
  RingChannelsView() = default;

  RingChannelsView( RingChannels* owner, std::size_t first, std::size_t n )
    : ring_( &owner->ring() )
    , first_( first )
    , n_( n )
  {
    ring_->reserve_channels( first + n );
  }

  RingChannel
  operator[]( std::size_t i ) const
  {
    return RingChannel( ring_, first_ + i );
  }

  std::size_t
  size() const
  {
    return n_;
  }

  // The owner clears and sizes the shared ring.
  void
  clear()
  {
  }

  void
  resize( std::size_t )
  {
    if ( ring_ )
    {
      ring_->resize();
    }
  }

private:
  InputRing* ring_ = nullptr;
  std::size_t first_ = 0;
  std::size_t n_ = 0;
};

// Fixed-size replacement for a std::vector< double > of known length N.
template < std::size_t N >
class InlineArray
{
public:
  InlineArray() = default;

  explicit InlineArray( std::size_t )
  {
  }

  double&
  operator[]( std::size_t i )
  {
    return data_[ i ];
  }

  double
  operator[]( std::size_t i ) const
  {
    return data_[ i ];
  }

  std::size_t
  size() const
  {
    return N;
  }

  void
  clear()
  {
    data_.fill( 0.0 );
  }

  void
  resize( std::size_t )
  {
  }

private:
  std::array< double, ( N > 0 ? N : 1 ) > data_ {};
};

} // namespace cortexzoo

#endif
